//! Reading the Prometheus text format back: what the tests (and anyone
//! checking a service from outside) use to see the numbers move. Not a
//! full parser: samples, their labels and values; `# HELP`/`# TYPE` lines
//! are skipped.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest scrape read (a service's whole exposition is a few tens of
/// kilobytes).
const MAX_SCRAPE_BYTES: u64 = 16 * 1024 * 1024;

/// One sample: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    fn has(&self, name: &str, value: &str) -> bool {
        self.labels
            .iter()
            .any(|(label, found)| label == name && found == value)
    }
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(parse_sample)
            .collect();
        Self { samples }
    }

    /// The sum of the samples named `name` whose labels include `labels`
    /// (0 when there is none: a counter not yet incremented is absent).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| labels.iter().all(|(label, value)| sample.has(label, value)))
            .map(|sample| sample.value)
            .sum()
    }
}

/// `GET /metrics` from `addr` (HTTP/1.0, no client library needed).
pub async fn scrape(addr: SocketAddr) -> io::Result<Exposition> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream
        .take(MAX_SCRAPE_BYTES)
        .read_to_string(&mut response)
        .await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of headers"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(io::Error::other(format!("scrape answered {head}")));
    }
    Ok(Exposition::parse(body))
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: Vec::new(),
            value,
        });
    };
    Some(Sample {
        name: name.to_owned(),
        labels: parse_labels(labels.strip_suffix('}')?)?,
        value,
    })
}

/// `a="x",b="y \"quoted\""` (values may hold braces, commas, escapes).
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, escaped) => value.push(escaped),
                },
                (index, '"') => break index,
                (_, other) => value.push(other),
            }
        };
        labels.push((name.trim_start_matches(',').to_owned(), value));
        rest = &after[end + 1..];
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_over_the_labels_asked_for() {
        let text = "# HELP x_total things\n# TYPE x_total counter\n\
            x_total{route=\"/a/{id}/b\",code=\"200\"} 3\n\
            x_total{route=\"/a/{id}/b\",code=\"500\"} 1\n\
            x_total{route=\"say \\\"hi\\\", world\",code=\"200\"} 2\n\
            up 1\n";
        let exposition = Exposition::parse(text);
        assert_eq!(exposition.sum("x_total", &[]), 6.0);
        assert_eq!(exposition.sum("x_total", &[("route", "/a/{id}/b")]), 4.0);
        assert_eq!(exposition.sum("x_total", &[("code", "200")]), 5.0);
        assert_eq!(
            exposition.sum("x_total", &[("route", "say \"hi\", world")]),
            2.0
        );
        assert_eq!(exposition.sum("up", &[]), 1.0);
        assert_eq!(exposition.sum("absent", &[]), 0.0);
    }
}
