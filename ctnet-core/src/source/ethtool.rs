//! `ethtool -S` through the SIOCETHTOOL ioctl (driver counters have no netlink API).
//!
//! The ioctl socket resolves interface names in the netns it was created in, so an
//! `Ethtool` must be opened on a thread inside the target netns.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::model::EthtoolStats;

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// Drivers with more counters than this are skipped (veth has ~10 per queue).
const MAX_STATS: u32 = 4096;
/// Extra room in the buffers: the kernel writes as many entries as the driver has *now*,
/// whatever length we pass, so a queue added since GDRVINFO must not overrun them.
const SLACK: usize = 256;

#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// An AF_INET datagram socket used only for SIOCETHTOOL.
pub(crate) struct Ethtool {
    fd: OwnedFd,
}

impl Ethtool {
    /// Open in the calling thread's netns.
    pub fn open() -> io::Result<Self> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
        let fd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        Ok(Self { fd })
    }

    fn ioctl(&self, ifname: &str, data: *mut libc::c_void) -> io::Result<()> {
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = ifname.as_bytes();
        if name.len() >= req.ifr_name.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name too long",
            ));
        }
        for (dst, src) in req.ifr_name.iter_mut().zip(name) {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = data.cast();
        // SAFETY: req points at a valid ifreq whose ifru_data points at a buffer sized
        // for the command written in its first u32, with room to spare (see SLACK).
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// `ethtool -i` driver name and `ethtool -S` counters of `ifname`.
    /// `Ok(None)` when the driver has no counters.
    pub fn stats(&self, ifname: &str) -> io::Result<Option<EthtoolStats>> {
        // SAFETY: DrvInfo is plain data; zeroed is valid.
        let mut info: DrvInfo = unsafe { std::mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        self.ioctl(ifname, (&mut info as *mut DrvInfo).cast())?;
        let driver = c_string(&info.driver);
        let n = info.n_stats;
        if n == 0 || n > MAX_STATS {
            return Ok(None);
        }
        let room = n as usize + SLACK;
        // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
        let mut strings = vec![0u8; 12 + room * ETH_GSTRING_LEN];
        strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
        strings[8..12].copy_from_slice(&n.to_ne_bytes());
        self.ioctl(ifname, strings.as_mut_ptr().cast())?;
        // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }: a u64 buffer keeps
        // the data aligned.
        let mut stats = vec![0u64; 1 + room];
        let mut head = [0u8; 8];
        head[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
        head[4..8].copy_from_slice(&n.to_ne_bytes());
        stats[0] = u64::from_ne_bytes(head);
        self.ioctl(ifname, stats.as_mut_ptr().cast())?;
        // Names and values must describe the same counters: both calls report how many
        // they wrote; a driver that changed in between is read again next time.
        let names = u32::from_ne_bytes(strings[8..12].try_into().expect("4 bytes")) as usize;
        let values = u32::from_ne_bytes(stats[0].to_ne_bytes()[4..8].try_into().expect("4 bytes")) as usize;
        if names != values || names > room {
            return Err(io::Error::other(format!(
                "counters changed while being read ({names} names, {values} values)"
            )));
        }
        let got = names;
        let mut counters = BTreeMap::new();
        for i in 0..got {
            let off = 12 + i * ETH_GSTRING_LEN;
            let name = c_string(&strings[off..off + ETH_GSTRING_LEN]);
            counters.insert(name.trim().to_string(), stats[1 + i]);
        }
        Ok(Some(EthtoolStats { driver, counters }))
    }
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drvinfo_matches_the_kernel_abi_size() {
        // sizeof(struct ethtool_drvinfo) in <linux/ethtool.h>.
        assert_eq!(std::mem::size_of::<DrvInfo>(), 196);
    }

    #[test]
    fn reads_c_strings_up_to_the_nul() {
        assert_eq!(c_string(b"veth\0\0junk"), "veth");
        assert_eq!(c_string(b"full"), "full");
    }

    #[test]
    fn loopback_has_no_driver_counters_or_says_why() {
        let e = Ethtool::open().unwrap();
        // lo answers GDRVINFO with EOPNOTSUPP on most kernels; either way, no panic.
        match e.stats("lo") {
            Ok(s) => assert!(s.is_none_or(|s| !s.driver.is_empty())),
            Err(err) => assert!(err.raw_os_error().is_some(), "{err}"),
        }
        assert!(e.stats("no-such-if-x").is_err());
    }
}
