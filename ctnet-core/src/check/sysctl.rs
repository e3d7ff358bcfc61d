//! `sysctl`: the host forwards IPv4 for traffic leaving the bridge.

use super::ctx::Ctx;
use super::nat::subnet_masqueraded;
use super::{Finding, Status, finding};

/// `sysctl.ip_forward`: with a default route, the host forwards IPv4.
pub(super) fn ip_forward(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    if a.default.is_none() {
        return Vec::new();
    }
    let fwd = a.host.sysctls.ip_forward;
    // Forwarding off breaks egress that the host set up (a MASQUERADE for the
    // subnet); without one it may be on purpose (an internal network).
    let egress_intended = a.subnet().is_some_and(|s| subnet_masqueraded(c.snap, s));
    vec![
        finding(
            match fwd {
                Some(1) => Status::Pass,
                Some(_) if egress_intended => Status::Fail,
                Some(_) => Status::Warn,
                None => Status::Skip,
            },
            match fwd {
                Some(1) => "the host forwards IPv4".to_string(),
                Some(_) if egress_intended => {
                    "net.ipv4.ip_forward is 0 although the subnet is masqueraded: nothing leaves the bridge"
                        .to_string()
                }
                Some(_) => {
                    "net.ipv4.ip_forward is 0: the containers reach nothing beyond the bridge".to_string()
                }
                None => "net.ipv4.ip_forward could not be read".to_string(),
            },
        )
        .ev(format!(
            "host net.ipv4.ip_forward = {}",
            fwd.map_or("?".into(), |v| v.to_string())
        ))
        .cmd("sysctl net.ipv4.ip_forward")
        .hint("sysctl -w net.ipv4.ip_forward=1"),
    ]
}
