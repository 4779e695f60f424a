//! The conformance test's side of the wire: a raw HTTP/1.1 client, and
//! the OpenAPI document compiled into one validator per response body.

use std::collections::HashMap;
use std::net::SocketAddr;

use aifn_server::openapi;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::cases::Case;
/// An answer read off the wire.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    /// Lowercased names.
    pub(super) headers: HashMap<String, String>,
    pub(super) body: Vec<u8>,
}

/// One request per connection (`Connection: close`), read to EOF. The
/// body is written while the answer is read: a server that refuses a big
/// body answers before reading it.
pub(super) async fn exchange(
    addr: SocketAddr,
    head: String,
    body: Vec<u8>,
) -> std::io::Result<Answer> {
    let stream = TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer (the unread body) ends the answer.
            Err(e) if !raw.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    drop(writer.await);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {raw:?}")))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let mut content = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        content = dechunk(&content);
    }
    Ok(Answer {
        status,
        headers,
        body: content,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let start = eol + 2;
        if size == 0 || start + size > data.len() {
            break;
        }
        out.extend_from_slice(&data[start..start + size]);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// The document, compiled: one validator per documented response body.
pub(super) struct Document {
    pub(super) doc: Value,
    pub(super) validators: HashMap<String, jsonschema::Validator>,
}

impl Document {
    pub(super) fn new() -> Document {
        let doc = openapi();
        let mut validators = HashMap::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let Some(schema) = response["content"]["application/json"].get("schema") else {
                        continue;
                    };
                    // The schema as the root, beside the components its
                    // `$ref`s point into.
                    let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema], "components": doc["components"]});
                    let v = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
                    validators.insert(format!("{method} {path} {status}"), v);
                }
            }
        }
        Document { doc, validators }
    }

    pub(super) fn operation(&self, template: &str, method: &str) -> Option<&Value> {
        self.doc["paths"][template].get(method.to_lowercase())
    }

    pub(super) fn parameter_schema(
        &self,
        template: &str,
        method: &str,
        name: &str,
    ) -> Option<&Value> {
        self.operation(template, method)?["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["in"] == "query" && p["name"] == name)
            .map(|p| &p["schema"])
    }

    /// Whether the document calls this query well-formed: known names,
    /// each once, each value of its parameter's type and enum. (`limit`'s
    /// range is served clamped, as its description says, so only its type
    /// counts here.)
    pub(super) fn query_is_well_formed(&self, case: &Case, method: &str) -> bool {
        let pairs = case.pairs();
        let mut seen = std::collections::BTreeSet::new();
        pairs.iter().all(|(k, v)| {
            let Some(schema) = self.parameter_schema(case.template(), method, k) else {
                return false;
            };
            seen.insert(k.clone())
                && match schema["type"].as_str() {
                    Some("integer") => v.parse::<u64>().is_ok(),
                    _ if schema.get("enum").is_some() => schema["enum"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x == v.as_str())),
                    _ if schema["format"] == "date-time" => time::OffsetDateTime::parse(
                        v,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_ok(),
                    _ => true,
                }
        })
    }
}
