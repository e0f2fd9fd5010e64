//! A small filesystem that a test can fill: a tmpfs mounted on a temporary
//! directory (the tests run as root), unmounted when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct SmallDisk {
    mount_point: TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mebibytes`.
    pub fn mount(mebibytes: u32) -> Self {
        let mount_point = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mebibytes}m"), "tmpfs"])
            .arg(mount_point.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { mount_point }
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    fn ballast(&self) -> PathBuf {
        self.path().join("ballast")
    }

    /// Writes a ballast file until the filesystem has no byte left.
    pub async fn fill(&self) {
        let ballast = self.ballast();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::create(ballast).expect("ballast file");
            let chunk = vec![0u8; 64 * 1024];
            // Ends at ENOSPC; smaller writes then take what is left.
            while file.write_all(&chunk).is_ok() {}
            while file.write_all(&[0u8; 512]).is_ok() {}
            while file.write_all(&[0u8]).is_ok() {}
        })
        .await
        .expect("fill task");
    }

    /// Removes the ballast: the space is back.
    pub async fn free(&self) {
        tokio::fs::remove_file(self.ballast())
            .await
            .expect("ballast removed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount_point.path())
            .status();
    }
}
