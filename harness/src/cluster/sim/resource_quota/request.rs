//! One write as the ResourceQuota plugin sees it.

use serde_json::Value;

/// The admission operations quota looks at (`Handler(Create, Update)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// One write as the ResourceQuota plugin sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The apiserver's minor version (34 to 37).
    pub minor: u32,
    pub operation: Operation,
    /// The API group of the object's resource (`""` for core, `apps`).
    pub group: &'a str,
    /// The resource's plural (`pods`, `deployments`).
    pub resource: &'a str,
    /// `""`, or `resize` / `status` for those subresources.
    pub subresource: &'a str,
    /// The request's name; when empty, the object's name, then its
    /// `generateName`, then `Unknown`, as `NewForbidden` picks.
    pub name: &'a str,
    /// The object after every mutation (defaulting, webhooks, LimitRanger).
    pub object: &'a Value,
    /// On an update, the stored object.
    pub old_object: Option<&'a Value>,
    /// The apiserver's clock (RFC 3339), for pods past their deletion grace
    /// period; `None` charges them as live.
    pub now: Option<&'a str>,
}
