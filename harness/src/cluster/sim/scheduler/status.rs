//! What a filter says about the node, and the message prefix every
//! FailedScheduling message starts with: shared by the filters, the
//! preemption step and the cycle that joins their reasons.

/// `NoNodeAvailableMsg` with the one node this cluster has.
pub(super) const NO_NODE: &str = "0/1 nodes are available:";

/// A filter's verdict on the node: its reasons, and whether preemption
/// could change it (`Unschedulable`) or not (`UnschedulableAndUnresolvable`).
#[derive(Debug)]
pub(super) struct Status {
    pub(super) reasons: Vec<String>,
    pub(super) resolvable: bool,
}

impl Status {
    pub(super) fn unresolvable(reason: &str) -> Status {
        Status {
            reasons: vec![reason.to_string()],
            resolvable: false,
        }
    }
}
