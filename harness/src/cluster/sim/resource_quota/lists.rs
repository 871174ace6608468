//! Resource lists and the small helpers every evaluator shares.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::{self, Quantity};

/// Resource name to quantity, sorted as Go's `prettyPrint` sorts its keys.
pub(super) type List = BTreeMap<String, Quantity>;

// ---------------------------------------------------------------------------
// Resource lists (`quota/v1/resources.go`, `addResourceList`, `max`).

/// A resource list from JSON, each entry rounded up to milli units as the
/// apiserver's defaulting left it; wrong types and unparsable entries are
/// absent.
pub(super) fn list(v: &Value) -> List {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let mut q = quantity::from_json(v)?.ok()?;
            q.round_up_to_milli();
            Some((k.clone(), q))
        })
        .collect()
}

pub(super) fn list_json(l: &List) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.canonical())))
            .collect(),
    )
}

#[cfg(test)]
pub(super) fn texts(l: &List) -> BTreeMap<String, String> {
    l.iter().map(|(k, q)| (k.clone(), q.canonical())).collect()
}

/// `addResourceList`: a new entry keeps its text, a sum is printed anew.
/// (A sum beyond the model's 128-bit range, which no cluster accepts,
/// leaves the entry as it was.)
pub(super) fn add_into(into: &mut List, new: &List) {
    for (k, q) in new {
        match into.get_mut(k) {
            None => {
                into.insert(k.clone(), q.clone());
            }
            Some(v) => {
                if let Some(sum) = v.checked_add(q) {
                    *v = sum;
                }
            }
        }
    }
}

/// `quota.Add(sums, usage)` restricted to the resources being summed.
pub(super) fn add_tracked(sums: &mut List, usage: &List) {
    for (k, v) in sums.iter_mut() {
        if let Some(sum) = usage.get(k).and_then(|q| v.checked_add(q)) {
            *v = sum;
        }
    }
}

/// `quota.Add`.
pub(super) fn add_lists(a: &List, b: &List) -> List {
    let mut out = a.clone();
    add_into(&mut out, b);
    out
}

/// `maxResourceList`: an entry is replaced only by a strictly larger one.
pub(super) fn max_into(into: &mut List, new: &List) {
    for (k, q) in new {
        let larger = into.get(k).is_none_or(|v| q.cmp_value(v).is_gt());
        if larger {
            into.insert(k.clone(), q.clone());
        }
    }
}

pub(super) fn max_of(first: &List, rest: &[&List]) -> List {
    let mut out = first.clone();
    for l in rest {
        max_into(&mut out, l);
    }
    out
}

/// `SubtractWithNonNegativeResult`.
pub(super) fn subtract_non_negative(a: &List, b: &List) -> List {
    let mut out = List::new();
    for (k, v) in a {
        let diff = match b.get(k) {
            Some(other) => v.checked_sub(other).unwrap_or_else(|| v.clone()),
            None => v.clone(),
        };
        let kept = if diff.signum() > 0 {
            diff
        } else {
            Quantity::zero()
        };
        out.insert(k.clone(), kept);
    }
    for k in b.keys() {
        out.entry(k.clone()).or_insert_with(Quantity::zero);
    }
    out
}

pub(super) fn remove_zeros(l: List) -> List {
    l.into_iter().filter(|(_, q)| !q.is_zero()).collect()
}

pub(super) fn mask(l: &List, keep: impl Fn(&String) -> bool) -> List {
    l.iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, q)| (k.clone(), q.clone()))
        .collect()
}

/// `quota.Equals`: the same names with equal values.
pub(super) fn same_values(a: &List, b: &List) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, q)| b.get(k).is_some_and(|o| q.cmp_value(o).is_eq()))
}

// ---------------------------------------------------------------------------
// Small helpers.

pub(super) fn array(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A field that Go would decode as a non-nil map or struct.
pub(super) fn object_at<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|f| f.is_object())
}

/// `validation.IsQualifiedName`: `[prefix/]name`, the prefix a DNS
/// subdomain, the name at most 63 alphanumerics, `-`, `_`, `.`.
pub(super) fn is_qualified_name(v: &str) -> bool {
    let name = match v.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] if is_dns_subdomain(prefix) => *name,
        _ => return false,
    };
    !name.is_empty() && name.len() <= 63 && alnum_ends(name) && name.bytes().all(name_byte)
}

pub(super) fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

pub(super) fn alnum_ends(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `validation.IsValidLabelValue`.
pub(super) fn is_label_value(v: &str) -> bool {
    v.is_empty() || (v.len() <= 63 && alnum_ends(v) && v.bytes().all(name_byte))
}

/// `validation.IsDNS1123Subdomain`.
pub(super) fn is_dns_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

/// Nanoseconds since the epoch of an RFC 3339 time (as `metav1.Time`
/// holds it), or `None`.
pub(super) fn unix_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        let s = text.get(from..to)?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut nanos: i128 = 0;
    if at(pos, b".") {
        let start = pos + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        let frac = &text[start..end.min(start + 9)];
        nanos = frac.parse::<i128>().ok()? * 10i128.pow(9 - frac.len() as u32);
        pos = end;
    }
    let offset = match text.get(pos..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (at(pos, b"+-")) && at(pos + 3, b":") => {
            let minutes = digits(pos + 1, pos + 3)? * 60 + digits(pos + 4, pos + 6)?;
            if at(pos, b"-") {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}
