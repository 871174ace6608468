//! A container's status as the one line a snapshot, the expectations and
//! the settled check all read.

use serde_json::Value;

/// What a container is doing, in one line, from its status.
pub fn container_state(s: &Value) -> String {
    let state = &s["state"];
    let last_msg = s["lastState"]["terminated"]["message"]
        .as_str()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if state["running"].is_object() {
        if s["ready"] == true {
            "Running, ready".into()
        } else {
            "Running, not ready".into()
        }
    } else if let Some(w) = state["waiting"].as_object() {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or("Waiting");
        match last_msg {
            Some(m) => format!("{reason}: {m}"),
            None => reason.to_string(),
        }
    } else if let Some(t) = state["terminated"].as_object() {
        let reason = t
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Terminated");
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        format!("{reason} (exit {code})")
    } else {
        "Unknown".into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn crash_loop_state_carries_the_cause() {
        let s = json!({"name": "envoy", "ready": false, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "cannot bind '0.0.0.0:10000': Address already in use\n"}}});
        assert_eq!(
            container_state(&s),
            "CrashLoopBackOff: cannot bind '0.0.0.0:10000': Address already in use"
        );
    }
}
