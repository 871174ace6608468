//! The scenario's own writes, sent as kubectl sends them and read as
//! kubectl reads them: the result, and the `Warning` headers kubectl prints
//! as `Warning: ...` (kube's typed calls drop the headers). The apiserver
//! sends each warning as `299 - "text"`, quoting `"` and `\`.

use http::header::WARNING;
use http_body_util::BodyExt;
use kube::client::Body;
use kube::core::Status;
use kube::Client;
use serde_json::Value;

/// What one write came back with.
pub struct Sent {
    /// The stored (or dry-run) object, or the apiserver's refusal as
    /// kube's typed calls give it (`kube::Error::Api`).
    pub result: Result<Value, kube::Error>,
    /// The warnings, in the order sent.
    pub warnings: Vec<String>,
}

/// Sends `request` and reads its warnings whatever the outcome; `Err` is
/// a failure to talk to the apiserver at all.
pub async fn send(client: &Client, request: http::Request<Vec<u8>>) -> kube::Result<Sent> {
    let response = client.send(request.map(Body::from)).await?;
    let warnings = response
        .headers()
        .get_all(WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_warning_header)
        .collect();
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let result = if status.is_client_error() || status.is_server_error() {
        let refusal = match serde_json::from_slice::<Status>(&bytes) {
            Ok(s) => s,
            // Not a Status (a proxy's page): its text, as kube reports it.
            Err(_) => Status::failure(
                String::from_utf8_lossy(&bytes).trim(),
                "Failed to parse error data",
            )
            .with_code(status.as_u16()),
        };
        Err(kube::Error::Api(refusal.boxed()))
    } else {
        serde_json::from_slice(&bytes).map_err(kube::Error::SerdeError)
    };
    Ok(Sent { result, warnings })
}

/// The texts of one `Warning` header value: RFC 7234 warn-values
/// (`code agent "text" ["date"]`), several separated by commas. Values
/// that are not of that form are skipped, as client-go skips them.
pub fn parse_warning_header(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value.trim_start();
    while !rest.is_empty() {
        let Some((text, after)) = one_warning(rest) else {
            break;
        };
        out.push(text);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None => break,
        }
    }
    out
}

/// One warn-value at the start of `s`: its text and what follows it.
fn one_warning(s: &str) -> Option<(String, &str)> {
    let (code, s) = s.split_once(' ')?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (_agent, s) = s.split_once(' ')?;
    let (text, mut rest) = quoted(s)?;
    // An optional quoted date after the text.
    if let Some(date) = rest.strip_prefix(' ').filter(|r| r.starts_with('"')) {
        rest = quoted(date)?.1;
    }
    Some((text, rest))
}

/// A quoted string at the start of `s`, unescaped, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '"' => return Some((text, &body[i + 1..])),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apiservers_header_is_unquoted() {
        assert_eq!(
            parse_warning_header(
                r#"299 - "would violate PodSecurity \"restricted:latest\": a\\b""#
            ),
            [r#"would violate PodSecurity "restricted:latest": a\b"#]
        );
    }

    #[test]
    fn several_values_in_one_header_and_a_date_are_read() {
        assert_eq!(
            parse_warning_header(
                r#"299 - "one", 299 agent "two, with a comma" "Sat, 25 Aug 2012 23:34:45 GMT",299 - "three""#
            ),
            ["one", "two, with a comma", "three"]
        );
    }

    #[test]
    fn what_is_not_a_warn_value_is_skipped() {
        assert!(parse_warning_header("").is_empty());
        assert!(parse_warning_header("garbage").is_empty());
        assert!(parse_warning_header(r#"29 - "short code""#).is_empty());
        assert!(parse_warning_header(r#"299 - "unterminated"#).is_empty());
        assert_eq!(parse_warning_header(r#"299 - "kept", nonsense"#), ["kept"]);
    }
}
