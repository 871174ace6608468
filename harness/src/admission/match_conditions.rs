//! A webhook's `matchConditions`: CEL expressions over the request that
//! decide, after its rules and selectors matched, whether it is called.
//!
//! The apiserver's rules (`webhook/matchconditions/matcher.go`): a condition
//! that evaluates to false skips the webhook, whatever the others did; when
//! none is false and some failed, `failurePolicy: Fail` refuses the request
//! (`pods "web" is forbidden: <the errors>`) and `Ignore` skips the
//! webhook; otherwise the webhook is called. The variables are `object`
//! (null on DELETE), `oldObject` (null on CREATE), `request` (the
//! AdmissionRequest's attributes without the objects) and `authorizer`.
//!
//! Evaluated with cel-rust, which parses and runs CEL as cel-go does for
//! the expressions webhooks write (field access, `has`, `in`, the list
//! macros, the string functions). What differs from the apiserver: no type
//! check when a webhook is registered (an expression that does not yield a
//! bool fails when evaluated, not when registered), no optional syntax
//! (`.?field`), no Kubernetes CEL libraries (`authorizer`, quantities,
//! URLs, IPs), and no cost budget. A registration that uses `authorizer` is
//! refused by [`check`], so a sim run never guesses an authorization.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use cel::{Context, Env, ExecutionError, Value as CelValue};
use k8s_openapi::api::admissionregistration::v1::{MatchCondition, MutatingWebhook};
use serde_json::Value;

/// The variables a match condition may name.
const VARIABLES: &[&str] = &["object", "oldObject", "request", "authorizer"];

/// The most conditions one webhook may have (`validateMatchConditions`).
const MAX_CONDITIONS: usize = 64;

/// What the conditions decide for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every condition held (or there are none): the webhook is called.
    Call,
    /// A condition was false, or one failed under `failurePolicy: Ignore`.
    Skip {
        /// The false condition, when one was.
        condition: Option<String>,
    },
    /// A condition failed under `failurePolicy: Fail`: the request is
    /// refused with these errors (the text after `is forbidden: `).
    Refuse(String),
}

/// The CEL environment: the standard library and the strings extension
/// (`lowerAscii`, `split`, `replace`, ...), which Kubernetes also enables.
fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // The strings extension only adds functions; failing to add it
        // leaves the standard library, which is still usable.
        let _ = env.add_extension(cel::extensions::strings);
        Arc::new(env)
    })
    .clone()
}

/// Whether `webhook`'s conditions can be registered, as the apiserver's
/// validation of a MutatingWebhookConfiguration decides, with its field
/// paths (`webhooks[0].matchConditions[1].expression`). `index` is the
/// webhook's place in the configuration.
pub fn check(index: usize, webhook: &MutatingWebhook) -> Result<(), String> {
    let conditions = webhook.match_conditions.as_deref().unwrap_or_default();
    let field = |i: usize, f: &str| format!("webhooks[{index}].matchConditions[{i}].{f}");
    if conditions.len() > MAX_CONDITIONS {
        return Err(format!(
            "webhooks[{index}].matchConditions: Too many: {}: must have at most {MAX_CONDITIONS} items",
            conditions.len()
        ));
    }
    let mut names = BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        if c.name.is_empty() {
            return Err(format!("{}: Required value", field(i, "name")));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!(
                "{}: Duplicate value: {:?}",
                field(i, "name"),
                c.name
            ));
        }
        if c.expression.trim().is_empty() {
            return Err(format!("{}: Required value", field(i, "expression")));
        }
        let program = env().compile(&c.expression).map_err(|e| {
            format!(
                "{}: Invalid value: {:?}: compilation failed: {e}",
                field(i, "expression"),
                c.expression
            )
        })?;
        let references = program.references();
        let bound = bound_variables(&c.expression);
        for variable in references.variables() {
            if variable == "authorizer" {
                return Err(format!(
                    "{}: the simulated cluster does not model `authorizer`; run this scenario on a real cluster",
                    field(i, "expression")
                ));
            }
            if !VARIABLES.contains(&variable) && !bound.contains(variable) {
                return Err(format!(
                    "{}: Invalid value: {:?}: compilation failed: ERROR: <input>: undeclared reference to '{variable}'",
                    field(i, "expression"),
                    c.expression
                ));
            }
        }
    }
    Ok(())
}

/// The names a comprehension binds (`c` in `containers.exists(c, ...)`):
/// the first argument of the macros that take a variable. Read from the
/// text, since the references cel-rust reports include them.
fn bound_variables(expression: &str) -> BTreeSet<String> {
    const MACROS: &[&str] = &["all(", "exists(", "exists_one(", "map(", "filter("];
    let mut out = BTreeSet::new();
    for m in MACROS {
        let mut rest = expression;
        while let Some(at) = rest.find(m) {
            let after = &rest[at + m.len()..];
            let name: String = after
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// The verdict of `webhook`'s conditions on one request. `request` is the
/// AdmissionRequest as sent (its `object` and `oldObject` are left out of
/// the `request` variable, as the apiserver leaves them out).
pub fn evaluate(webhook: &MutatingWebhook, request: &Value) -> Verdict {
    let conditions = webhook.match_conditions.as_deref().unwrap_or_default();
    if conditions.is_empty() {
        return Verdict::Call;
    }
    let mut attributes = request.clone();
    if let Some(map) = attributes.as_object_mut() {
        map.remove("object");
        map.remove("oldObject");
    }
    let mut context = Context::with_env(env());
    let variables = [
        ("object", &request["object"]),
        ("oldObject", &request["oldObject"]),
        ("request", &attributes),
    ];
    for (name, value) in variables {
        if let Err(e) = context.add_variable(name, value) {
            return on_errors(webhook, vec![format!("{name}: {e}")]);
        }
    }
    let mut errors = Vec::new();
    for condition in conditions {
        match run(condition, &context) {
            Ok(true) => {}
            Ok(false) => {
                return Verdict::Skip {
                    condition: Some(condition.name.clone()),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Verdict::Call
    } else {
        on_errors(webhook, errors)
    }
}

/// The failure policy's answer to conditions that failed, none false.
fn on_errors(webhook: &MutatingWebhook, errors: Vec<String>) -> Verdict {
    if webhook.failure_policy.as_deref() == Some("Ignore") {
        return Verdict::Skip { condition: None };
    }
    Verdict::Refuse(aggregate(errors))
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, several
/// (repeats dropped) as `[a, b]`.
fn aggregate(errors: Vec<String>) -> String {
    let mut seen = BTreeSet::new();
    let unique: Vec<String> = errors
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    match unique.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// One condition's value, or its error in the apiserver's words.
fn run(condition: &MatchCondition, context: &Context) -> Result<bool, String> {
    let failed = |detail: String| {
        format!(
            "expression '{}' resulted in error: {detail}",
            condition.expression
        )
    };
    // Checked when registered; a condition that no longer compiles is an
    // error of this call, never a panic.
    let program = env()
        .compile(&condition.expression)
        .map_err(|e| failed(e.to_string()))?;
    match program.execute(context) {
        Ok(CelValue::Bool(b)) => Ok(b),
        Ok(other) => Err(failed(format!(
            "the expression gave {}, not a bool (the apiserver refuses such a condition when it is registered)",
            type_name(&other)
        ))),
        Err(e) => Err(failed(go_error(&e))),
    }
}

/// cel-go's words for the runtime errors a webhook's conditions meet.
fn go_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..) => "no such overload".into(),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        other => other.to_string(),
    }
}

fn type_name(v: &CelValue) -> &'static str {
    match v {
        CelValue::Int(_) => "int",
        CelValue::UInt(_) => "uint",
        CelValue::Float(_) => "double",
        CelValue::String(_) => "string",
        CelValue::List(_) => "list",
        CelValue::Map(_) => "map",
        CelValue::Null => "null",
        _ => "a value",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(policy: &str, conditions: &[(&str, &str)]) -> MutatingWebhook {
        MutatingWebhook {
            name: "inject.example.com".into(),
            failure_policy: Some(policy.into()),
            match_conditions: Some(
                conditions
                    .iter()
                    .map(|(name, expression)| MatchCondition {
                        name: name.to_string(),
                        expression: expression.to_string(),
                    })
                    .collect(),
            ),
            ..MutatingWebhook::default()
        }
    }

    fn request() -> Value {
        json!({
            "operation": "CREATE",
            "namespace": "shop",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": {"metadata": {"name": "web", "labels": {"app": "web"}},
                       "spec": {"containers": [{"name": "app"}]}},
            "oldObject": null
        })
    }

    #[test]
    fn no_conditions_calls_the_webhook() {
        let mut w = hook("Fail", &[]);
        assert_eq!(evaluate(&w, &request()), Verdict::Call);
        w.match_conditions = None;
        assert_eq!(evaluate(&w, &request()), Verdict::Call);
    }

    #[test]
    fn every_variable_is_bound() {
        let w = hook(
            "Fail",
            &[
                ("labelled", "object.metadata.labels['app'] == 'web'"),
                (
                    "create",
                    "oldObject == null && request.operation == 'CREATE'",
                ),
                (
                    "controller",
                    "request.userInfo.username.startsWith('system:serviceaccount:')",
                ),
                (
                    "one-container",
                    "object.spec.containers.exists(c, c.name == 'app')",
                ),
                ("no-object-in-request", "!has(request.object)"),
                ("strings", "request.namespace.upperAscii() == 'SHOP'"),
            ],
        );
        assert_eq!(evaluate(&w, &request()), Verdict::Call);
    }

    #[test]
    fn a_false_condition_skips_even_when_another_fails() {
        let w = hook(
            "Fail",
            &[
                ("broken", "object.metadata.annotations['x'] == 'y'"),
                ("not-kube-system", "request.namespace != 'shop'"),
            ],
        );
        assert_eq!(
            evaluate(&w, &request()),
            Verdict::Skip {
                condition: Some("not-kube-system".into())
            }
        );
    }

    #[test]
    fn errors_follow_the_failure_policy() {
        let conditions = [
            ("missing-label", "object.metadata.labels['team'] == 'a'"),
            ("missing-field", "object.metadata.annotations['x'] == 'y'"),
        ];
        assert_eq!(
            evaluate(&hook("Fail", &conditions), &request()),
            Verdict::Refuse(
                "[expression 'object.metadata.labels['team'] == 'a'' resulted in error: no such key: team, \
                 expression 'object.metadata.annotations['x'] == 'y'' resulted in error: no such key: annotations]"
                    .into()
            )
        );
        assert_eq!(
            evaluate(&hook("Fail", &conditions[..1]), &request()),
            Verdict::Refuse(
                "expression 'object.metadata.labels['team'] == 'a'' resulted in error: no such key: team"
                    .into()
            )
        );
        assert_eq!(
            evaluate(&hook("Ignore", &conditions), &request()),
            Verdict::Skip { condition: None }
        );
    }

    #[test]
    fn a_non_bool_result_is_an_error_not_a_panic() {
        let verdict = evaluate(
            &hook("Fail", &[("name", "object.metadata.name")]),
            &request(),
        );
        let Verdict::Refuse(text) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(text.contains("gave string, not a bool"), "{text}");
    }

    #[test]
    fn registration_checks_names_syntax_and_variables() {
        let ok = hook(
            "Fail",
            &[("a", "object.spec.containers.all(c, has(c.image))")],
        );
        assert_eq!(check(0, &ok), Ok(()));
        let cases = [
            (vec![("", "true")], "webhooks[2].matchConditions[0].name: Required value"),
            (
                vec![("a", "true"), ("a", "false")],
                "webhooks[2].matchConditions[1].name: Duplicate value: \"a\"",
            ),
            (vec![("a", " ")], "webhooks[2].matchConditions[0].expression: Required value"),
            (vec![("a", "(")], "webhooks[2].matchConditions[0].expression: Invalid value: \"(\": compilation failed: "),
            (vec![("a", "params.x")], "undeclared reference to 'params'"),
            (vec![("a", "authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('create').allowed()")],
             "does not model `authorizer`"),
        ];
        for (conditions, want) in cases {
            let err = check(2, &hook("Fail", &conditions)).unwrap_err();
            assert!(err.contains(want), "{conditions:?}: {err}");
        }
        let many: Vec<(String, &str)> = (0..65).map(|i| (format!("c{i}"), "true")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, e)| (n.as_str(), *e)).collect();
        assert!(check(0, &hook("Fail", &many))
            .unwrap_err()
            .contains("Too many: 65"));
    }
}
