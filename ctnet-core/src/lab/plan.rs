//! Lab naming and planning: pure functions from a [`LabSpec`] to the exact objects.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest lab name: `NAME-vNNNNN` must fit the kernel's 15-byte interface names.
pub const MAX_NAME_LEN: usize = 8;

/// Most containers one lab may have (the veth suffix has five digits).
pub const MAX_CONTAINERS: u32 = 99_999;

/// What to build: a bridge with a gateway and `containers` netns on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// The lab name; every object it creates starts with `NAME-`.
    pub name: String,
    /// How many netns "containers" to attach to the bridge.
    pub containers: u32,
    /// The IPv4 subnet: the bridge takes the first host address, containers the next.
    pub subnet: Ipv4Net,
    /// Add MASQUERADE for the subnet, FORWARD accepts for the bridge and `ip_forward=1`.
    pub nat: bool,
}

impl LabSpec {
    /// Default lab name.
    pub const DEFAULT_NAME: &'static str = "ctnet";
    /// Default subnet (only ever used inside namespaces the lab creates).
    pub const DEFAULT_SUBNET: &'static str = "10.77.0.0/24";

    /// A spec with the defaults: 3 containers on 10.77.0.0/24, no NAT.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            containers: 3,
            subnet: Self::DEFAULT_SUBNET.parse().expect("valid default subnet"),
            nat: false,
        }
    }
}

/// The names a lab gives its objects. `lab down` finds objects by these patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNames {
    lab: String,
}

impl LabNames {
    /// Names for lab `lab`, which must be valid (see [`validate_name`]).
    pub fn new(lab: &str) -> Result<Self> {
        validate_name(lab)?;
        Ok(Self { lab: lab.to_string() })
    }

    /// The lab name.
    pub fn lab(&self) -> &str {
        &self.lab
    }

    /// The bridge: `NAME-br`.
    pub fn bridge(&self) -> String {
        format!("{}-br", self.lab)
    }

    /// Host end of container `i`'s veth: `NAME-vI`.
    pub fn host_veth(&self, i: u32) -> String {
        format!("{}-v{i}", self.lab)
    }

    /// Container `i`'s netns: `NAME-cI`.
    pub fn netns(&self, i: u32) -> String {
        format!("{}-c{i}", self.lab)
    }

    /// The tag put on firewall rules (`-m comment`) and on the bridge's alias.
    pub fn tag(&self) -> String {
        format!("ctnet-lab:{}", self.lab)
    }

    /// Whether `ifname` is one of this lab's host veths.
    pub fn is_host_veth(&self, ifname: &str) -> bool {
        self.numbered(ifname, "-v")
    }

    /// Whether `name` is one of this lab's netns.
    pub fn is_netns(&self, name: &str) -> bool {
        self.numbered(name, "-c")
    }

    fn numbered(&self, name: &str, infix: &str) -> bool {
        name.strip_prefix(self.lab.as_str())
            .and_then(|rest| rest.strip_prefix(infix))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
    }
}

/// Names a lab cannot take: its record would be another file of the state directory.
const RESERVED_NAMES: [&str; 1] = ["faults"];

/// Check a lab name: 1-8 characters, a lowercase letter then letters or digits, and
/// not `faults` (the fault record `faults.json` shares the labs' directory).
///
/// No `-`, so that `NAME-` prefixes of two labs never overlap.
pub fn validate_name(name: &str) -> Result<()> {
    if RESERVED_NAMES.contains(&name) {
        return Err(Error::Invalid(format!(
            "lab name {name:?} is reserved (its record would be the fault record {name}.json): \
             pick another --name"
        )));
    }
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_lowercase()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid lab name {name:?}: use 1-{MAX_NAME_LEN} characters, a lowercase letter \
             first, then lowercase letters or digits (e.g. \"t\", \"lab1\")"
        )))
    }
}

/// One container of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// 1-based index.
    pub index: u32,
    /// Its netns name.
    pub netns: String,
    /// Host end of its veth (on the bridge).
    pub host_veth: String,
    /// The address of its `eth0`.
    pub ip: Ipv4Addr,
}

/// Every object a lab will create, computed from a [`LabSpec`] without touching the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    /// The spec this plan came from.
    pub spec: LabSpec,
    /// The bridge name.
    pub bridge: String,
    /// The bridge's address, each container's default gateway.
    pub gateway: Ipv4Addr,
    /// The containers.
    pub containers: Vec<ContainerPlan>,
    /// The tag for firewall rule comments and the bridge alias.
    pub tag: String,
}

impl LabPlan {
    /// Validate `spec` and compute names and addresses.
    pub fn new(spec: &LabSpec) -> Result<Self> {
        let names = LabNames::new(&spec.name)?;
        let net = spec.subnet;
        if net.network() != net.addr() {
            return Err(Error::Invalid(format!(
                "subnet {net} has host bits set: did you mean {}?",
                net.trunc()
            )));
        }
        // Ranges with a meaning of their own: never a lab's.
        const RESERVED: [(&str, &str); 5] = [
            ("0.0.0.0/8", "\"this network\""),
            ("127.0.0.0/8", "loopback"),
            ("169.254.0.0/16", "link-local"),
            ("224.0.0.0/4", "multicast"),
            ("240.0.0.0/4", "reserved"),
        ];
        for (range, what) in RESERVED {
            let r: Ipv4Net = range.parse().expect("valid range");
            if r.contains(&net.network()) || net.contains(&r.network()) {
                return Err(Error::Invalid(format!(
                    "subnet {net} overlaps {range} ({what}): use a private range such as 10.77.0.0/24"
                )));
            }
        }
        if net.prefix_len() < 8 {
            return Err(Error::Invalid(format!(
                "subnet {net} is too large: use a prefix of /8 or longer (e.g. /24)"
            )));
        }
        if net.prefix_len() > 30 {
            return Err(Error::Invalid(format!(
                "subnet {net} is too small: use a prefix of /30 or shorter (e.g. /24)"
            )));
        }
        if spec.containers == 0 || spec.containers > MAX_CONTAINERS {
            return Err(Error::Invalid(format!(
                "containers must be between 1 and {MAX_CONTAINERS}, not {}",
                spec.containers
            )));
        }
        // Usable hosts minus the gateway.
        let room = (1u64 << (32 - net.prefix_len())) - 3;
        if u64::from(spec.containers) > room {
            return Err(Error::Invalid(format!(
                "subnet {net} has room for {room} containers after the gateway, not {}: \
                 use a larger subnet (e.g. /{})",
                spec.containers,
                32 - (u64::from(spec.containers) + 3)
                    .next_power_of_two()
                    .trailing_zeros()
            )));
        }
        let base = u32::from(net.network());
        let gateway = Ipv4Addr::from(base + 1);
        let containers = (1..=spec.containers)
            .map(|i| ContainerPlan {
                index: i,
                netns: names.netns(i),
                host_veth: names.host_veth(i),
                ip: Ipv4Addr::from(base + 1 + i),
            })
            .collect();
        Ok(Self {
            spec: spec.clone(),
            bridge: names.bridge(),
            gateway,
            containers,
            tag: names.tag(),
        })
    }

    /// The names helper for this plan's lab.
    pub fn names(&self) -> LabNames {
        LabNames {
            lab: self.spec.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, n: u32, subnet: &str) -> LabSpec {
        LabSpec {
            name: name.into(),
            containers: n,
            subnet: subnet.parse().unwrap(),
            nat: false,
        }
    }

    #[test]
    fn plans_names_and_addresses_in_order() {
        let plan = LabPlan::new(&spec("t", 3, "10.9.0.0/24")).unwrap();
        assert_eq!(plan.bridge, "t-br");
        assert_eq!(plan.gateway, Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(plan.tag, "ctnet-lab:t");
        let got: Vec<_> = plan
            .containers
            .iter()
            .map(|c| (c.netns.as_str(), c.host_veth.as_str(), c.ip.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("t-c1", "t-v1", "10.9.0.2".to_string()),
                ("t-c2", "t-v2", "10.9.0.3".to_string()),
                ("t-c3", "t-v3", "10.9.0.4".to_string()),
            ]
        );
    }

    #[test]
    fn longest_names_fit_the_kernel_limit() {
        let plan = LabPlan::new(&spec("abcdefgh", MAX_CONTAINERS, "10.0.0.0/8")).unwrap();
        let last = plan.containers.last().unwrap();
        assert_eq!(last.host_veth, "abcdefgh-v99999");
        assert!(last.host_veth.len() <= 15);
        assert!(plan.bridge.len() <= 15);
    }

    #[test]
    fn rejects_bad_specs_with_what_would_be_right() {
        let cases = [
            (spec("T", 1, "10.0.0.0/24"), "invalid lab name"),
            (spec("a-b", 1, "10.0.0.0/24"), "invalid lab name"),
            (spec("toolongname", 1, "10.0.0.0/24"), "1-8 characters"),
            (spec("", 1, "10.0.0.0/24"), "invalid lab name"),
            (spec("faults", 1, "10.0.0.0/24"), "is reserved"),
            (spec("t", 1, "10.0.0.5/24"), "did you mean 10.0.0.0/24"),
            (spec("t", 1, "10.0.0.0/31"), "too small"),
            (spec("t", 0, "10.0.0.0/24"), "between 1 and"),
            (spec("t", 254, "10.0.0.0/24"), "room for 253 containers"),
            (spec("t", 1, "0.0.0.0/0"), "overlaps 0.0.0.0/8"),
            (spec("t", 1, "127.0.0.0/24"), "loopback"),
            (spec("t", 1, "169.254.1.0/24"), "link-local"),
            (spec("t", 1, "224.1.0.0/16"), "multicast"),
            (spec("t", 1, "8.0.0.0/7"), "too large"),
        ];
        for (s, want) in cases {
            let err = LabPlan::new(&s).unwrap_err().to_string();
            assert!(err.contains(want), "{s:?}: {err}");
        }
        // The largest lab a /24 holds is accepted.
        LabPlan::new(&spec("t", 253, "10.0.0.0/24")).unwrap();
    }

    #[test]
    fn suggests_a_subnet_big_enough() {
        let err = LabPlan::new(&spec("t", 300, "10.0.0.0/24"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/23"), "{err}");
    }

    #[test]
    fn recognises_only_its_own_numbered_objects() {
        let n = LabNames::new("t").unwrap();
        for (name, veth, netns) in [
            ("t-v1", true, false),
            ("t-v200", true, false),
            ("t-c7", false, true),
            ("t-v", false, false),
            ("t-v01", false, false),
            ("t-vx", false, false),
            ("t2-v1", false, false),
            ("t-br", false, false),
            ("x-c1", false, false),
        ] {
            assert_eq!(n.is_host_veth(name), veth, "{name}");
            assert_eq!(n.is_netns(name), netns, "{name}");
        }
    }
}
