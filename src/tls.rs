//! TLS on `PORT` (`TLS_CERT_FILE`, `TLS_KEY_FILE`): the rustls server config actix
//! serves with, and the certificate reloader that lets a renewed certificate in without a
//! restart. It does not do the handshakes (actix-tls does, on the worker threads, within
//! `HANDSHAKE_TIMEOUT_MS`) and knows nothing of what runs over them.
//!
//! Every new handshake asks [`CurrentCertificate`] for the certificate, and a reload
//! swaps it whole: a handshake gets the old pair or the new one, never a mix, and open
//! connections are not touched (their keys were agreed at their handshake). The
//! reloader runs on its own thread, so its file reads block no actor: every
//! `TLS_RELOAD_INTERVAL_MS` it rereads both files and loads them if their contents
//! changed, and [`TlsReloader::reload`] (what `main` calls on SIGHUP) loads them at once.
//! A pair that does not load (a missing or garbled file, a key that is not the
//! certificate's, a renewal caught half-written) is logged and leaves the certificate in
//! service as it was; the next change is tried again.
//!
//! Crypto is rustls with *ring*: no OpenSSL, no aws-lc. It offers only `http/1.1` in
//! ALPN (actix adds it; `h2` is left out by building actix-web without `http2`, see
//! Cargo.toml and actix/actix-web#4213), since a WebSocket cannot be upgraded over
//! HTTP/2: clients that negotiate h2 fail to connect (actix/actix-web#1069).

use std::{
    collections::hash_map::DefaultHasher,
    fmt,
    fs::File,
    hash::{Hash, Hasher},
    io::{self, Read},
    path::Path,
    sync::{mpsc, Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ServerConfig,
};
use tokio::sync::oneshot;

use crate::config::{ConfigError, TlsFiles};

/// A certificate chain or key file larger than this is not one: reading stops there, so
/// a path to a device or a log file cannot eat memory. (The token key file,
/// `AUTH_JWT_PUBLIC_KEY_FILE`, is read the same way.)
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Loads the certificate the config names and starts the thread that reloads it. The
/// error names the variable whose file is missing, unreadable or not usable.
pub(crate) fn start(
    files: &TlsFiles,
    reload_interval: Duration,
) -> Result<(ServerConfig, TlsReloader), ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let contents = PairContents::read(files);
    let certified = contents.load(files, &provider)?;
    let current = Arc::new(CurrentCertificate(RwLock::new(Arc::new(certified))));
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| ConfigError {
            variable: "TLS_CERT_FILE".into(),
            problem: format!("no TLS version to offer: {err}"),
        })?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    let status = Arc::new(Mutex::new(TlsStatus {
        loaded: 1,
        last_error: None,
    }));
    let watcher = Watcher {
        files: files.clone(),
        provider,
        current,
        seen: contents.fingerprint(),
        status: status.clone(),
    };
    let (requests, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name("hubbub-tls-reload".into())
        .spawn(move || watcher.run(&inbox, reload_interval))
        .map_err(|err| ConfigError {
            variable: "TLS_CERT_FILE".into(),
            problem: format!("cannot start the certificate reloader: {err}"),
        })?;
    Ok((server_config, TlsReloader { requests, status }))
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn replace(&self, certified: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One certificate for every name: which names it covers is the operator's choice.
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Asks the reloader thread for a reload, and tells how its loads went; cheap to clone.
/// The thread ends when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct TlsReloader {
    requests: mpsc::Sender<oneshot::Sender<Result<(), ConfigError>>>,
    status: Arc<Mutex<TlsStatus>>,
}

impl TlsReloader {
    /// Loads the files now, whether or not they changed (SIGHUP), on the reloader thread:
    /// awaiting this blocks nothing. On an error the previous certificate stays in service.
    pub(crate) async fn reload(&self) -> Result<(), TlsReloadError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .map_err(|_| TlsReloadError::Stopped)?;
        match answer.await {
            Ok(result) => result.map_err(TlsReloadError::Refused),
            Err(_) => Err(TlsReloadError::Stopped),
        }
    }

    pub(crate) fn status(&self) -> TlsStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How the certificate loads went, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsStatus {
    /// Certificates loaded since start-up, the first one included.
    pub loaded: u64,
    /// Why the last attempt to load the files failed, when it did; cleared by a load
    /// that succeeds.
    pub last_error: Option<String>,
}

/// Why [`TlsReloader::reload`] left the certificate as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsReloadError {
    /// The server does not serve TLS.
    NotConfigured,
    /// The reloader thread is gone (the server is stopping).
    Stopped,
    /// The files did not load; the previous certificate is still in service.
    Refused(ConfigError),
}

impl fmt::Display for TlsReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("TLS is not configured"),
            Self::Stopped => f.write_str("the certificate reloader has stopped"),
            Self::Refused(err) => write!(f, "{err}; the previous certificate stays in service"),
        }
    }
}

impl std::error::Error for TlsReloadError {}

/// The reloader thread's state.
struct Watcher {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCertificate>,
    /// What the files held at the last attempt, loaded or not: a change is a new
    /// fingerprint, so a bad file is reported once, not at every poll.
    seen: u64,
    status: Arc<Mutex<TlsStatus>>,
}

impl Watcher {
    fn run(
        mut self,
        inbox: &mpsc::Receiver<oneshot::Sender<Result<(), ConfigError>>>,
        interval: Duration,
    ) {
        loop {
            let request = if interval.is_zero() {
                inbox
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                inbox.recv_timeout(interval)
            };
            match request {
                Ok(reply) => {
                    let result = self.load(PairContents::read(&self.files), true);
                    // Nobody waiting any more is fine: the outcome is logged.
                    let _ = reply.send(result);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let contents = PairContents::read(&self.files);
                    if contents.fingerprint() != self.seen {
                        let _ = self.load(contents, false);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Loads `contents` into service, or logs why not and keeps the certificate as it is.
    fn load(&mut self, contents: PairContents, on_request: bool) -> Result<(), ConfigError> {
        self.seen = contents.fingerprint();
        let why = if on_request {
            "on request"
        } else {
            "the files changed"
        };
        let result = contents.load(&self.files, &self.provider);
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(certified) => {
                self.current.replace(certified);
                status.loaded += 1;
                status.last_error = None;
                log::info!(
                    "TLS certificate reloaded from {} ({why}); new connections get it",
                    self.files.cert.display()
                );
                Ok(())
            }
            Err(err) => {
                log::error!(
                    "TLS certificate not reloaded ({why}): {err}; \
                     still serving the previous certificate"
                );
                status.last_error = Some(err.to_string());
                Err(err)
            }
        }
    }
}

/// What the two files held when read (or why they could not be read).
#[derive(Hash)]
struct PairContents {
    cert: Result<Vec<u8>, FileError>,
    key: Result<Vec<u8>, FileError>,
}

/// A file that could not be read, as a message (kept comparable for the fingerprint).
#[derive(Hash)]
pub(crate) struct FileError(pub(crate) String);

impl PairContents {
    fn read(files: &TlsFiles) -> Self {
        Self {
            cert: read_capped(&files.cert),
            key: read_capped(&files.key),
        }
    }

    /// A digest of both contents: enough to notice a change without keeping a copy of
    /// the private key around.
    fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// The certificate chain and its key, checked to belong together.
    fn load(
        &self,
        files: &TlsFiles,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, ConfigError> {
        let cert_error = |problem: String| ConfigError {
            variable: "TLS_CERT_FILE".into(),
            problem: format!("{}: {problem}", files.cert.display()),
        };
        let key_error = |problem: String| ConfigError {
            variable: "TLS_KEY_FILE".into(),
            problem: format!("{}: {problem}", files.key.display()),
        };
        let cert_pem = self
            .cert
            .as_ref()
            .map_err(|err| cert_error(err.0.clone()))?;
        let key_pem = self.key.as_ref().map_err(|err| key_error(err.0.clone()))?;
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| cert_error(format!("not a PEM certificate chain ({err})")))?;
        if chain.is_empty() {
            return Err(cert_error(
                "no CERTIFICATE block (expected a PEM certificate, then any intermediates)".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| {
            key_error(match err {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PRIVATE KEY block (expected a PEM PKCS#8, PKCS#1 or SEC1 key)".into()
                }
                err => format!("not a PEM private key ({err})"),
            })
        })?;
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|err| key_error(format!("unusable private key ({err})")))?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // Unknown: the key cannot tell its public half; ring's keys always can.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                Err(key_error(format!(
                    "not the key of the certificate in TLS_CERT_FILE ({})",
                    files.cert.display()
                )))
            }
            Err(err) => Err(cert_error(format!("not a usable certificate ({err})"))),
        }
    }
}

/// The file's bytes, up to [`MAX_FILE_BYTES`]; a larger file is an error.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, FileError> {
    let read = || -> io::Result<Vec<u8>> {
        let mut contents = Vec::new();
        File::open(path)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut contents)?;
        Ok(contents)
    };
    match read() {
        Ok(contents) if contents.len() as u64 > MAX_FILE_BYTES => Err(FileError(format!(
            "larger than {MAX_FILE_BYTES} bytes: not a certificate or key file"
        ))),
        Ok(contents) => Ok(contents),
        Err(err) => Err(FileError(format!("cannot read it ({err})"))),
    }
}
