//! http-edge
