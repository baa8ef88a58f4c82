//! Who may open a WebSocket: the connection caps (in total and per client IP) and the
//! `Origin` allow-list. Checked before the upgrade, so a refused client gets a plain
//! HTTP answer (503 or 403 with a JSON body) and costs the server no actor. The address
//! counted is the client's as [`crate::client_address`] resolves it (through any
//! `TRUSTED_PROXIES`).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use crate::{config::Config, metrics::OpenConnection};

#[derive(Debug)]
pub struct Admission {
    /// Open WebSocket connections, `/ws` and `/echo` together.
    open: AtomicUsize,
    /// Open connections per client address; entries go when their count reaches zero.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_connections: usize,
    max_connections_per_ip: usize,
    /// Empty: any origin.
    allowed_origins: Vec<String>,
    /// Whether `TRUSTED_PROXIES` is set: without it, one address at the per-IP cap may
    /// well be a reverse proxy that every client shares, which the operator is told.
    proxies_trusted: bool,
    /// Set once that hint is logged: it is said once per server, not per refusal, or a
    /// busy proxy would flood the log with it.
    shared_address_hinted: AtomicBool,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `MAX_CONNECTIONS` reached.
    ServerFull { max: usize },
    /// `MAX_CONNECTIONS_PER_IP` reached for this address.
    TooManyFromAddress { max: usize },
    /// The `Origin` header names a site not in `ALLOWED_ORIGINS`.
    OriginNotAllowed { origin: String },
}

/// One admitted connection; dropping it frees its slot. Held by the connection's actor.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
    /// Its place in `hubbub_connections_open`, given up with the slot.
    counted: Option<OpenConnection>,
}

impl Admission {
    pub fn new(config: &Config) -> Self {
        Self {
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            allowed_origins: config.allowed_origins.clone(),
            proxies_trusted: !config.trusted_proxies.is_empty(),
            shared_address_hinted: AtomicBool::new(false),
        }
    }

    /// Takes a slot for a connection from `ip` whose request carried `origin`.
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        origin: Option<&str>,
    ) -> Result<Ticket, Refusal> {
        if let Some(origin) = origin {
            if !self.allowed_origins.is_empty() && !self.allowed_origins.iter().any(|o| o == origin)
            {
                return Err(Refusal::OriginNotAllowed {
                    origin: origin.to_string(),
                });
            }
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::ServerFull {
                max: self.max_connections,
            });
        }
        if let Some(ip) = ip {
            let mut per_ip = self.lock_per_ip();
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.max_connections_per_ip {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.hint_at_proxies(ip);
                return Err(Refusal::TooManyFromAddress {
                    max: self.max_connections_per_ip,
                });
            }
            *count += 1;
        }
        Ok(Ticket {
            admission: self.clone(),
            ip,
            counted: None,
        })
    }

    /// The first time an address hits `MAX_CONNECTIONS_PER_IP` with `TRUSTED_PROXIES`
    /// unset, says what that means behind a proxy and what to set. Returns whether it
    /// did just now.
    fn hint_at_proxies(&self, ip: IpAddr) -> bool {
        if self.proxies_trusted || self.shared_address_hinted.swap(true, Ordering::AcqRel) {
            return false;
        }
        log::warn!(
            "{ip} has reached MAX_CONNECTIONS_PER_IP ({max}): its further WebSockets are \
             refused. If hubbub is behind a reverse proxy or load balancer, every client \
             arrives from the proxy's address and all of them share this one allowance: \
             set TRUSTED_PROXIES to the proxy's address so each client is counted by the \
             address the proxy forwards (X-Forwarded-For). Said once; each refusal is \
             logged on its own.",
            max = self.max_connections_per_ip
        );
        true
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn lock_per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map is only ever updated by whole increments or decrements: a panic
        // elsewhere cannot leave it half-written.
        self.per_ip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Ticket {
    /// The ticket, counted as an open connection (by endpoint) for as long as it lives.
    pub fn counted(mut self, open: OpenConnection) -> Self {
        self.counted = Some(open);
        self
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.admission.lock_per_ip();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission_with(max: usize, per_ip: usize, origins: &[&str]) -> Arc<Admission> {
        let config = Config {
            max_connections: max,
            max_connections_per_ip: per_ip,
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..Config::default()
        };
        Arc::new(Admission::new(&config))
    }

    #[test]
    fn caps_in_total_and_per_address_and_frees_slots_on_drop() {
        let admission = admission_with(3, 2, &[]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admission.admit(Some(a), None).unwrap();
        let _second = admission.admit(Some(a), None).unwrap();
        assert_eq!(
            admission.admit(Some(a), None).unwrap_err(),
            Refusal::TooManyFromAddress { max: 2 }
        );
        let _third = admission.admit(Some(b), None).unwrap();
        assert_eq!(
            admission.admit(Some(b), None).unwrap_err(),
            Refusal::ServerFull { max: 3 }
        );
        drop(first);
        assert_eq!(admission.open_connections(), 2);
        admission.admit(Some(a), None).unwrap();
    }

    #[test]
    fn the_proxy_hint_is_given_once_and_only_without_trusted_proxies() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let admission = admission_with(10, 1, &[]);
        assert!(admission.hint_at_proxies(a));
        assert!(!admission.hint_at_proxies(a));
        let behind_proxy = Arc::new(Admission::new(&Config {
            max_connections_per_ip: 1,
            trusted_proxies: crate::client_address::TrustedProxies::parse("10.0.0.9").unwrap(),
            ..Config::default()
        }));
        assert!(!behind_proxy.hint_at_proxies(a));
    }

    #[test]
    fn origins_must_match_exactly_when_listed() {
        let admission = admission_with(10, 10, &["https://chat.example"]);
        assert!(admission.admit(None, Some("https://chat.example")).is_ok());
        assert!(admission.admit(None, None).is_ok());
        assert!(matches!(
            admission.admit(None, Some("https://evil.example")),
            Err(Refusal::OriginNotAllowed { .. })
        ));
        assert!(admission_with(10, 10, &[])
            .admit(None, Some("https://any.example"))
            .is_ok());
    }
}
