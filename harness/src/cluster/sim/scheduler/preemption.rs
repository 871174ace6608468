//! DefaultPreemption's PostFilter: whether evicting lower-priority pods
//! could make room, and the message when it cannot. The cluster does not
//! evict; finding victims is reported as such.

use serde_json::Value;

use super::fields::str_at;
use super::filters::filter;
use super::status::{Status, NO_NODE};

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// DefaultPreemption's PostFilter message, or the victims it would evict.
pub(super) fn preempt(
    pod: &Value,
    node: &Value,
    bound: &[&Value],
    status: &Status,
) -> Result<String, Vec<String>> {
    if str_at(pod, "/spec/preemptionPolicy") == "Never" {
        return Ok("not eligible due to preemptionPolicy=Never.".into());
    }
    if !status.resolvable {
        return Ok(format!("{NO_NODE} 1 {NOT_HELPFUL}."));
    }
    let priority = priority(pod);
    let (victims, kept): (Vec<&Value>, Vec<&Value>) =
        bound.iter().partition(|p| self::priority(p) < priority);
    if victims.is_empty() || filter(pod, node, &kept).is_some() {
        return Ok(format!("{NO_NODE} 1 {NO_VICTIMS}."));
    }
    Err(victims
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                str_at(v, "/metadata/namespace"),
                str_at(v, "/metadata/name")
            )
        })
        .collect())
}

fn priority(pod: &Value) -> i64 {
    pod.pointer("/spec/priority")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}
