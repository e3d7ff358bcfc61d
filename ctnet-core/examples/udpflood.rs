//! Bench helper (not a tool): send small UDP datagrams as fast as `sendmmsg(2)` allows,
//! to a destination inside a lab netns, for a number of seconds, then print the count.
//!
//!   udpflood DEST_IP PORT SECONDS [PAYLOAD_BYTES]
//!
//! Run it inside a lab netns (`ip netns exec c1 udpflood 10.60.0.3 9 10`); it sends only
//! to the address it is given.

use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: udpflood DEST_IP PORT SECONDS [PAYLOAD_BYTES]");
        std::process::exit(2);
    }
    let dest: SocketAddrV4 = format!("{}:{}", args[1], args[2]).parse().expect("DEST_IP PORT");
    let secs: f64 = args[3].parse().expect("SECONDS");
    let size: usize = args.get(4).map_or(18, |s| s.parse().expect("PAYLOAD_BYTES"));
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.connect(dest).expect("connect");
    let payload = vec![0x5a_u8; size];
    let mut iov: Vec<libc::iovec> = (0..BATCH)
        .map(|_| libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; each points at one iovec that lives until the end.
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while Instant::now() < end {
        // SAFETY: msgs is a valid array of BATCH initialised mmsghdr.
        let n = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0) };
        if n > 0 {
            sent += n as u64;
        }
    }
    println!("{sent}");
}
