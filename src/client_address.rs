//! Whose connection this is: the TCP peer, or, when that peer is a reverse proxy listed
//! in `TRUSTED_PROXIES`, the client the proxy says it forwarded (`X-Forwarded-For`, or
//! RFC 7239 `Forwarded`). Owns the trusted list and the parsing of both headers; the
//! limits that count by the address are [`crate::admission`]'s.
//!
//! Behind nginx every TCP peer is nginx, so without this every client would share one
//! address and one `MAX_CONNECTIONS_PER_IP` allowance. The headers are believed only
//! from a trusted peer: anyone else could write any address in them. actix-web's own
//! `ConnectionInfo::realip_remote_addr` reads the headers from every peer, so it is not
//! used.
//!
//! Which hop is the client: each proxy appends the address it took the request from, so
//! the list ends with the hops the trusted proxies wrote and begins with whatever the
//! client sent. Read from the right, the first address that is not itself a trusted
//! proxy is the last one a trusted proxy vouches for: the client. Everything left of it
//! is the client's own claim and is never read, so garbage there does not matter. A hop
//! that has to be read and is not an address (`unknown`, an obfuscated `_node`, a typo)
//! means the proxies cannot say who the client is: the TCP peer is used, as with no
//! header at all.
//!
//! `X-Forwarded-For` is read when present, `Forwarded` only without it: nginx, Caddy,
//! HAProxy and most load balancers write `X-Forwarded-For` and pass a client's own
//! `Forwarded` through unchanged, so preferring `Forwarded` would let a client behind
//! them pick its address. A proxy that writes only `Forwarded` must drop the client's
//! `X-Forwarded-For` (docs/deploy.md).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use actix_web::http::header::{HeaderMap, HeaderName, FORWARDED, X_FORWARDED_FOR};

/// The addresses whose `X-Forwarded-For` and `Forwarded` headers are believed
/// (`TRUSTED_PROXIES`); empty: nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpRange>);

/// One `TRUSTED_PROXIES` entry: an address (a block of one) or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpRange {
    /// The block's first address, host bits zero (checked when parsed).
    network: IpAddr,
    /// Leading bits that must match: up to 32 for IPv4, 128 for IPv6.
    prefix: u8,
}

/// The address a connection is counted and logged by, and the proxy it came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    /// The client; `None` only when the transport has no peer address (not TCP).
    pub ip: Option<IpAddr>,
    /// The trusted proxy that forwarded the client's address, when one did.
    pub via: Option<IpAddr>,
}

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR blocks, IPv4 or IPv6
    /// (`10.0.0.0/8, 127.0.0.1, ::1, fd00::/8`); blank entries are skipped. The error
    /// says which entry is wrong and why.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(IpRange::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address, as a dual-stack listener reports IPv4 peers that way).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|range| range.contains(ip))
    }
}

impl IpRange {
    fn parse(entry: &str) -> Result<Self, String> {
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("{entry:?} is not an IP address or a CIDR block (like 10.0.0.0/8 or fd00::/8)")
        })?;
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => bits,
            // Digits only, no leading zero: `/+8` or `/08` are refused rather than
            // guessed at (some tools read a leading zero as octal).
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|prefix| {
                    *prefix <= bits
                        && text.bytes().all(|b| b.is_ascii_digit())
                        && (text == "0" || !text.starts_with('0'))
                })
                .ok_or_else(|| {
                    format!("{entry:?}: the prefix length must be a number from 0 to {bits}")
                })?,
        };
        // Peers are compared as IPv4 when they are IPv4-mapped (`::ffff:a.b.c.d`), so a
        // block of mapped addresses is kept as the IPv4 block it is.
        let (network, prefix) = match network {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                (network.to_canonical(), prefix - 96)
            }
            _ => (network, prefix),
        };
        let range = Self { network, prefix };
        if range.masked(network) != network {
            // 10.1.2.3/8 is more likely a typo for /32 or a wrong prefix than a wish to
            // trust all of 10.0.0.0/8: say so instead of guessing.
            return Err(format!(
                "{entry:?} has bits set past its prefix; the block is {}/{prefix}",
                range.masked(network)
            ));
        }
        Ok(range)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        matches!(
            (self.network, ip),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        ) && self.masked(ip) == self.network
    }

    /// `ip` with the bits past the prefix cleared (`ip` is of the network's family).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

impl ClientAddress {
    /// The client behind a connection from `peer` whose request carried `headers`.
    pub fn resolve(
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Self {
        let peer = peer.map(|address| address.ip().to_canonical());
        match peer {
            Some(proxy) if trusted.contains(proxy) => match forwarded_client(headers, trusted) {
                Some(client) => Self {
                    ip: Some(client),
                    via: Some(proxy),
                },
                None => Self {
                    ip: Some(proxy),
                    via: None,
                },
            },
            _ => Self {
                ip: peer,
                via: None,
            },
        }
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.via) {
            (Some(ip), Some(via)) => write!(f, "{ip} (via proxy {via})"),
            (Some(ip), None) => write!(f, "{ip}"),
            (None, _) => f.write_str("an unknown address"),
        }
    }
}

/// The right-most hop the trusted proxies forwarded that is not one of them, from
/// `X-Forwarded-For`, else from `Forwarded`; `None` without either header, or when the
/// hop to read is not an address.
fn forwarded_client(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    if headers.contains_key(X_FORWARDED_FOR) {
        let list = joined(headers, &X_FORWARDED_FOR)?;
        right_most_untrusted(&x_forwarded_for_hops(&list), trusted)
    } else if headers.contains_key(FORWARDED) {
        let list = joined(headers, &FORWARDED)?;
        right_most_untrusted(&forwarded_hops(&list)?, trusted)
    } else {
        None
    }
}

/// Every line of a list header, in order, joined with commas (RFC 9110 section 5.3:
/// the same as one line); `None` if a line is not visible ASCII text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let lines: Option<Vec<&str>> = headers
        .get_all(name)
        .map(|value| value.to_str().ok())
        .collect();
    Some(lines?.join(","))
}

/// The hops of an `X-Forwarded-For` list: one per comma, as written.
fn x_forwarded_for_hops(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).collect()
}

/// The `for=` of each element of a `Forwarded` list, unquoted; an element without one
/// (or with two) is an empty hop, which is not an address. `None` if the list does not
/// parse (an unterminated quote).
fn forwarded_hops(value: &str) -> Option<Vec<String>> {
    split_outside_quotes(value, ',')?
        .into_iter()
        .map(|element| {
            let mut found = None;
            for pair in split_outside_quotes(element, ';')? {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    if found.is_some() {
                        return Some(String::new());
                    }
                    found = Some(unquote(value.trim())?);
                }
            }
            Some(found.unwrap_or_default())
        })
        .collect()
}

/// `text` cut at every `separator` outside a quoted string (which may hold separators
/// and `\`-escapes); `None` if a quote is left open.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            pieces.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    pieces.push(&text[start..]);
    Some(pieces)
}

/// A `token` as is, a `quoted-string` without its quotes and escapes; `None` for a
/// quoted string that does not end where the value does.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(text),
            c => text.push(c),
        }
    }
    None
}

/// From the right: skip the trusted proxies, take the first other address. All trusted
/// (a client on a proxy's own host): the left-most. `None` when the hop to take is not
/// an address, or there are no hops.
fn right_most_untrusted<S: AsRef<str>>(hops: &[S], trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut left_most_trusted = None;
    for hop in hops.iter().rev() {
        let ip = hop_address(hop.as_ref())?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        left_most_trusted = Some(ip);
    }
    left_most_trusted
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711` (the port, which some proxies add, is dropped).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Some(rest) = hop.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            .then(|| address.parse::<Ipv6Addr>().ok())
            .flatten()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (address, port) = hop.rsplit_once(':')?;
    let v4: Ipv4Addr = address.parse().ok()?;
    is_port(port).then_some(IpAddr::V4(v4))
}

fn is_port(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The client behind a peer at `peer` whose request had `headers`.
    fn client(peer: &str, headers: &[(&str, &str)], trusting: &str) -> ClientAddress {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let peer: SocketAddr = match peer.parse::<IpAddr>() {
            Ok(peer) => SocketAddr::new(peer, 40_000),
            Err(_) => peer.parse().unwrap(),
        };
        ClientAddress::resolve(Some(peer), &map, &trusted(trusting))
    }

    fn client_ip(peer: &str, headers: &[(&str, &str)], trusting: &str) -> IpAddr {
        client(peer, headers, trusting).ip.unwrap()
    }

    #[test]
    fn the_list_takes_addresses_and_blocks_of_both_families() {
        let list = trusted(" 10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8,,192.168.1.0/24 ");
        for inside in ["10.255.1.2", "127.0.0.1", "::1", "fd12::3", "192.168.1.77"] {
            assert!(list.contains(ip(inside)), "{inside}");
        }
        for outside in ["11.0.0.1", "127.0.0.2", "::2", "fe80::1", "192.168.2.1"] {
            assert!(!list.contains(ip(outside)), "{outside}");
        }
        assert!(trusted("").is_empty());
        assert!(trusted(" , ").is_empty());
        assert!(trusted("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!trusted("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(trusted("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        assert!(trusted("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(trusted("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
    }

    #[test]
    fn a_bad_entry_is_refused_saying_which_and_why() {
        for bad in [
            "nginx",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.1/8",
            "fd00::1/8",
            "10.0.0",
            "[::1]",
            "fe80::1%eth0",
            "127.0.0.1:80",
        ] {
            let err = TrustedProxies::parse(&format!("127.0.0.1,{bad}")).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        let err = TrustedProxies::parse("10.1.2.3/8").unwrap_err();
        assert!(err.contains("10.0.0.0/8"), "{err}");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let forged = [
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(
            client("127.0.0.1", &forged, ""),
            ClientAddress {
                ip: Some(ip("127.0.0.1")),
                via: None
            }
        );
        assert_eq!(client_ip("127.0.0.1", &forged, "10.0.0.1"), ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        assert_eq!(
            client("10.0.0.1", &[], "10.0.0.1"),
            ClientAddress {
                ip: Some(ip("10.0.0.1")),
                via: None
            }
        );
    }

    #[test]
    fn x_forwarded_for_gives_the_right_most_hop_that_is_not_a_trusted_proxy() {
        let via_nginx = [("X-Forwarded-For", "198.51.100.7")];
        assert_eq!(
            client("127.0.0.1", &via_nginx, "127.0.0.1"),
            ClientAddress {
                ip: Some(ip("198.51.100.7")),
                via: Some(ip("127.0.0.1"))
            }
        );
        // The client wrote the first hop itself; two proxies wrote the last two.
        let chain = [("X-Forwarded-For", "1.1.1.1, 198.51.100.7, 10.0.0.2")];
        assert_eq!(
            client_ip("10.0.0.3", &chain, "10.0.0.0/24"),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        let lines = [
            ("X-Forwarded-For", "1.1.1.1"),
            ("X-Forwarded-For", "198.51.100.7,10.0.0.2"),
        ];
        assert_eq!(
            client_ip("10.0.0.3", &lines, "10.0.0.0/24"),
            ip("198.51.100.7")
        );
        // Only trusted hops (a client on a proxy's host): the furthest one.
        let all_trusted = [("X-Forwarded-For", "10.0.0.9, 10.0.0.2")];
        assert_eq!(
            client_ip("10.0.0.3", &all_trusted, "10.0.0.0/24"),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn hops_may_carry_ports_and_ipv6_may_be_bracketed() {
        for (hop, expected) in [
            ("198.51.100.7:4711", "198.51.100.7"),
            ("2001:db8::17", "2001:db8::17"),
            ("[2001:db8::17]", "2001:db8::17"),
            ("[2001:db8::17]:4711", "2001:db8::17"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
        ] {
            let headers = [("X-Forwarded-For", hop)];
            assert_eq!(client_ip("::1", &headers, "::1"), ip(expected), "{hop}");
        }
    }

    #[test]
    fn a_malformed_hop_where_the_client_should_be_means_the_peer() {
        for value in [
            "",
            "unknown",
            "198.51.100.7, nonsense",
            "198.51.100.7,",
            "300.1.1.1",
            "198.51.100.7:port",
            "198.51.100.7:123456",
            "198.51.100.7:99999",
            "[2001:db8::17",
            "[2001:db8::17]4711",
            "[198.51.100.7]",
        ] {
            let headers = [("X-Forwarded-For", value)];
            assert_eq!(
                client("10.0.0.1", &headers, "10.0.0.1"),
                ClientAddress {
                    ip: Some(ip("10.0.0.1")),
                    via: None
                },
                "{value:?}"
            );
        }
        // Left of the client is the client's own claim: never read, never held against it.
        let headers = [("X-Forwarded-For", "garbage, 198.51.100.7")];
        assert_eq!(
            client_ip("10.0.0.1", &headers, "10.0.0.1"),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_gives_the_right_most_for_that_is_not_a_trusted_proxy() {
        for (value, expected) in [
            ("for=198.51.100.7", "198.51.100.7"),
            ("For=198.51.100.7;proto=https;by=10.0.0.1", "198.51.100.7"),
            ("proto=https; for=198.51.100.7", "198.51.100.7"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[::1]\"", "::1"),
            ("for=\"198.51.100.7:80\"", "198.51.100.7"),
            (
                "for=1.1.1.1, for=198.51.100.7;by=\"[::1]\", for=10.0.0.2",
                "198.51.100.7",
            ),
            // A quoted value may hold the separators.
            ("for=1.1.1.1;x=\"a,b;c\", for=198.51.100.7", "198.51.100.7"),
            ("for=\"198.51\\.100.7\"", "198.51.100.7"),
        ] {
            let headers = [("Forwarded", value)];
            assert_eq!(
                client_ip("10.0.0.1", &headers, "10.0.0.0/24"),
                ip(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn a_malformed_forwarded_means_the_peer() {
        for value in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=198.51.100.7;for=198.51.100.8",
            "for=\"[2001:db8::17]:4711",
            "for=\"198.51.100.7\"x",
            "for=198.51.100.7, by=10.0.0.1",
            "198.51.100.7",
        ] {
            let headers = [("Forwarded", value)];
            assert_eq!(
                client_ip("10.0.0.1", &headers, "10.0.0.1"),
                ip("10.0.0.1"),
                "{value}"
            );
        }
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        // nginx writes X-Forwarded-For and passes the client's own Forwarded through.
        let headers = [
            ("Forwarded", "for=203.0.113.9"),
            ("X-Forwarded-For", "198.51.100.7"),
        ];
        assert_eq!(
            client_ip("127.0.0.1", &headers, "127.0.0.1"),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_address_reads_well_in_a_log_line() {
        let headers = [("X-Forwarded-For", "198.51.100.7")];
        assert_eq!(
            client("127.0.0.1", &headers, "127.0.0.1").to_string(),
            "198.51.100.7 (via proxy 127.0.0.1)"
        );
        assert_eq!(client("127.0.0.1", &[], "").to_string(), "127.0.0.1");
        let unknown = ClientAddress::resolve(None, &HeaderMap::new(), &trusted("127.0.0.1"));
        assert_eq!(unknown.to_string(), "an unknown address");
    }
}
