//! pcapng (draft-ietf-opsawg-pcapng) written whole into memory: one Section Header
//! Block, one Interface Description Block per interface (its name, a description such
//! as the netns, its link type), then an Enhanced Packet Block per frame naming the
//! interface it was seen on, so Wireshark and tshark show where each packet was seen
//! (`tshark -T fields -e frame.interface_name`). Little-endian, microsecond stamps.

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// An interface of a pcapng file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `if_name`: the interface's name (`vethab12`, `eth0@web1`).
    pub name: String,
    /// `if_description`: where it is (`host netns`, `netns web1`).
    pub description: String,
    /// The link type (`LINKTYPE_ETHERNET`).
    pub link_type: u16,
    /// Bytes kept of each frame.
    pub snaplen: u32,
}

/// Append an Enhanced Packet Block to `out`: a frame seen on `interface` at `ts_us`
/// (Unix microseconds), `len` bytes long on the wire, of which `data` were kept.
pub fn packet_block(out: &mut Vec<u8>, interface: u32, ts_us: i64, len: u32, data: &[u8]) {
    let ts = ts_us.max(0) as u64;
    let total = (12 + 20 + data.len() + pad4(data.len())) as u32;
    out.extend_from_slice(&6u32.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&interface.to_le_bytes());
    out.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    out.extend_from_slice(&(ts as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&len.max(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, pad4(data.len())));
    out.extend_from_slice(&total.to_le_bytes());
}

/// A pcapng document being built.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    interfaces: u32,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// One option (code, value, padded), for the options area of a block.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    // An option's length is 16 bits: a longer value (a hostile name) is cut.
    let value = &value[..value.len().min(u16::MAX as usize - 3)];
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.extend(std::iter::repeat_n(0u8, pad4(value.len())));
}

impl Writer {
    /// A new document with its section header.
    pub fn new(application: &str) -> Self {
        let mut w = Self::default();
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        // shb_userappl.
        option(&mut body, 4, application.as_bytes());
        option(&mut body, 0, &[]);
        w.block(0x0A0D_0D0A, &body);
        w
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let total = (12 + body.len()) as u32;
        self.out.extend_from_slice(&kind.to_le_bytes());
        self.out.extend_from_slice(&total.to_le_bytes());
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&total.to_le_bytes());
    }

    /// Describe an interface; the returned id is what [`Writer::packet`] takes.
    pub fn interface(&mut self, i: &Interface) -> u32 {
        let mut body = Vec::new();
        body.extend_from_slice(&i.link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&i.snaplen.to_le_bytes());
        option(&mut body, 2, i.name.as_bytes());
        if !i.description.is_empty() {
            option(&mut body, 3, i.description.as_bytes());
        }
        // if_tsresol: 10^-6 (the default, said anyway).
        option(&mut body, 9, &[6]);
        option(&mut body, 0, &[]);
        self.block(1, &body);
        self.interfaces += 1;
        self.interfaces - 1
    }

    /// One frame seen on `interface` at `ts_us` (Unix microseconds), `len` bytes long
    /// on the wire, of which `data` were kept.
    pub fn packet(&mut self, interface: u32, ts_us: i64, len: u32, data: &[u8]) {
        packet_block(&mut self.out, interface, ts_us, len, data);
    }

    /// The bytes so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing was written (never: the section header is there from the start).
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The finished document.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk the blocks as a reader does: every length agrees at both ends, and the
    /// packet blocks name the interfaces described before them.
    #[test]
    fn blocks_are_whole_and_packets_name_their_interface() {
        let mut w = Writer::new("ctnet test");
        let a = w.interface(&Interface {
            name: "veth1".into(),
            description: "host netns".into(),
            link_type: LINKTYPE_ETHERNET,
            snaplen: 512,
        });
        let b = w.interface(&Interface {
            name: "x".repeat(70_000),
            description: String::new(),
            link_type: LINKTYPE_ETHERNET,
            snaplen: 512,
        });
        w.packet(a, 1_700_000_000_123_456, 60, &[1, 2, 3]);
        w.packet(b, 1_700_000_000_123_457, 5, &[9; 5]);
        let bytes = w.into_bytes();
        let mut at = 0;
        let mut kinds = Vec::new();
        let mut ifaces = Vec::new();
        while at < bytes.len() {
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let end = u32::from_le_bytes(bytes[at + len - 4..at + len].try_into().unwrap()) as usize;
            assert_eq!(len, end);
            if kind == 6 {
                ifaces.push(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()));
            }
            kinds.push(kind);
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds, vec![0x0A0D_0D0A, 1, 1, 6, 6]);
        assert_eq!(ifaces, vec![0, 1]);
    }
}
