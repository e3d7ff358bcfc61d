//! Routing decisions asked of the kernel itself: RTM_GETROUTE (`ip route get`) in the
//! netns the packet is in, with its source, input interface and mark, so policy rules
//! and every table count, exactly as for a real packet. For a live trace.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

use super::{KernelRoute, Router};
use crate::model::Snapshot;
use crate::netns::{Netns, NetnsKey, NetnsRef};

/// A [`Router`] that asks the kernel, entering each netns on a short-lived thread.
pub struct KernelRouter {
    refs: HashMap<NetnsKey, Vec<NetnsRef>>,
    open: RefCell<HashMap<NetnsKey, Option<Netns>>>,
}

impl KernelRouter {
    /// A router for the netns of `snap` (opened when first asked).
    pub fn new(snap: &Snapshot) -> KernelRouter {
        KernelRouter {
            refs: snap.netns.iter().map(|n| (n.key, n.refs.clone())).collect(),
            open: RefCell::new(HashMap::new()),
        }
    }
}

impl Router for KernelRouter {
    fn route(
        &self,
        ns: NetnsKey,
        dst: IpAddr,
        src: Option<IpAddr>,
        iif: Option<u32>,
        mark: u32,
    ) -> Option<KernelRoute> {
        let mut open = self.open.borrow_mut();
        let handle = open
            .entry(ns)
            .or_insert_with(|| self.refs.get(&ns).and_then(|r| Netns::open_any(r, ns).ok()));
        let handle = handle.as_ref()?;
        let mark = (mark != 0).then_some(mark);
        let answer = handle
            .run(move || {
                let mut rt = crate::source::rtnl::Rtnl::open()?;
                rt.route_get(dst, src, iif, mark)
            })
            .ok()?;
        match answer {
            Ok(Some(r)) => Some(KernelRoute::Route(r)),
            Ok(None) => None,
            Err(e) => e.raw_os_error().map(KernelRoute::Refused),
        }
    }
}
