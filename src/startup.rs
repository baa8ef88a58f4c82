//! Builds the running server from a [`Config`]: the hub, the routes, the listener. Both
//! `main` and the tests call [`Application::build`], so tests run the real thing.

use std::{
    io,
    net::TcpListener,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::Actor;
use actix_web::{dev::ServerHandle, middleware, web, App, HttpServer};

use crate::{
    admission::Admission,
    auth::Verifier,
    cluster::{self, ClusterCounters, ClusterSettings},
    config::Config,
    hub::{
        backend::{InMemory, RoomBackend},
        messages::Stopping,
        Hub, MemberIds,
    },
    metrics::Metrics,
    protocol::{Limits, MAX_NAME_CHARS, MAX_REF_CHARS, MAX_ROOM_CHARS},
    routes::{self, AppState},
    session::ConnectionSettings,
    shutdown::Shutdown,
    supervisor::{Supervisor, SupervisorSettings},
    tls::{self, TlsReloadError, TlsReloader, TlsStatus},
    transport,
    worker::Worker,
};

/// How stale actix-http's clock may be. It starts the request timeout from a time it
/// refreshes every 500 ms, so a connection may get up to that much less than
/// `client_request_timeout`: with a 500 ms timeout, a request arriving 300 ms after the
/// connect was refused with 408 about half the time. Adding the step gives every
/// connection at least `HANDSHAKE_TIMEOUT_MS`, and drops it at most 0.5 s later.
const ACTIX_CLOCK_STEP: Duration = Duration::from_millis(500);

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    controller: Controller,
}

/// Stops a running [`Application`] gracefully; cheap to clone.
#[derive(Clone)]
pub struct Controller {
    hub: actix::Addr<Hub>,
    server: ServerHandle,
    shutdown: Shutdown,
    admission: Arc<Admission>,
    config: Arc<Config>,
    /// With TLS: the certificate reloader (its thread lives while a clone of this does).
    tls: Option<TlsReloader>,
}

impl Application {
    /// Binds `HOST:PORT` from the config and builds the server (must run inside an actix
    /// system: the hub actor starts here).
    pub fn build(config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(config.bind_address())?;
        Self::build_with_listener(config, listener)
    }

    /// One node in memory, or with `REDIS_URL` a node of a cluster, which joins it
    /// (Redis reached, its first ids taken) before the port listens.
    pub fn build_with_listener(config: Config, listener: TcpListener) -> io::Result<Self> {
        let Some(url) = config.redis_url.clone() else {
            let backend = InMemory::new(config.room_rules());
            return Self::build_with_backend(config, listener, Box::new(backend));
        };
        let counters = Arc::new(ClusterCounters::default());
        let (backend, ids) = cluster::start(ClusterSettings {
            url,
            url_for_logs: config.redis_url_for_logs().unwrap_or_default(),
            prefix: config.redis_prefix.clone(),
            node_id: config.node_id.to_string(),
            node_timeout: config.node_timeout,
            rules: config.room_rules(),
            member_count_interval: config.member_count_interval,
            log_len: config.redis_log_len,
            counters: counters.clone(),
        })?;
        Self::build_with_parts(
            config,
            listener,
            Box::new(backend),
            MemberIds::from_cluster(ids),
            Metrics::for_cluster(counters),
        )
    }

    /// The server with room state kept by `backend` (the tests use one that answers
    /// late, to show the hub keeps every connection's order whatever the backend).
    ///
    /// With `config.tls` set, the certificate is loaded first: a file that does not load
    /// fails the build with an [`io::ErrorKind::InvalidInput`] error whose inner error
    /// is the [`ConfigError`](crate::config::ConfigError) naming the variable.
    pub fn build_with_backend(
        config: Config,
        listener: TcpListener,
        backend: Box<dyn RoomBackend>,
    ) -> io::Result<Self> {
        Self::build_with_parts(
            config,
            listener,
            backend,
            MemberIds::starting_now(),
            Metrics::default(),
        )
    }

    fn build_with_parts(
        config: Config,
        listener: TcpListener,
        backend: Box<dyn RoomBackend>,
        ids: MemberIds,
        metrics: Metrics,
    ) -> io::Result<Self> {
        let port = listener.local_addr()?.port();
        let tls = config
            .tls
            .as_ref()
            .map(|files| tls::start(files, config.tls_reload_interval))
            .transpose()
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let metrics = Arc::new(metrics);
        let hub = Hub::new(
            backend,
            metrics.thread_counters(),
            config.member_count_interval,
        )
        .start();
        let supervisor = Supervisor::new(
            SupervisorSettings {
                sweep_interval: config.heartbeat_interval,
                jammed_after: config.client_timeout + config.heartbeat_interval,
            },
            hub.clone().recipient(),
            metrics.thread_counters(),
        )
        .start();
        let shutdown = Shutdown::default();
        let state_shutdown = shutdown.clone();
        let admission = Arc::new(Admission::new(&config));
        let state = AppState {
            hub: hub.clone(),
            admission: admission.clone(),
            ids,
            settings: Arc::new(connection_settings(&config)),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            api_key: config.api_key.clone(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        };
        let static_dir = config.static_dir.clone();
        // Runs once per worker thread, on that thread: each gets its own plumbing, bound
        // to this server's hub, supervisor and shutdown.
        let controller_hub = hub.clone();
        let mut server = HttpServer::new(move || {
            let worker = Worker::new(
                hub.clone(),
                supervisor.clone(),
                shutdown.clone(),
                metrics.thread_counters(),
            );
            App::new()
                .wrap(middleware::NormalizePath::trim())
                .configure(|cfg| routes::configure(cfg, state.clone(), worker, &static_dir))
                .default_service(web::to(routes::error::not_found))
        })
        .on_connect(transport::on_connect)
        .client_disconnect_timeout(config.close_linger)
        .client_request_timeout(config.handshake_timeout + ACTIX_CLOCK_STEP)
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        let (server, reloader) = match tls {
            // Only TLS on this port. The handshake has HANDSHAKE_TIMEOUT_MS, as the
            // request after it has (`client_request_timeout`): a client that connects and
            // sends nothing is dropped either way.
            Some((server_config, reloader)) => (
                server
                    .tls_handshake_timeout(config.handshake_timeout)
                    .listen_rustls_0_23(listener, server_config)?,
                Some(reloader),
            ),
            None => (server.listen(listener)?, None),
        };
        let server = server.run();
        let controller = Controller {
            hub: controller_hub,
            server: server.handle(),
            shutdown: state_shutdown,
            admission,
            config: Arc::new(config),
            tls: reloader,
        };
        Ok(Self {
            port,
            server,
            controller,
        })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// Whether the port speaks TLS (`https://`, `wss://`).
    pub fn serves_tls(&self) -> bool {
        self.controller.tls.is_some()
    }

    /// Serves until [`Controller::shutdown`] completes.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        // The controller kept here keeps the certificate reloader running while the
        // server does, whoever else holds a controller.
        let Self {
            server, controller, ..
        } = self;
        let result = server.await;
        drop(controller);
        result
    }
}

impl Controller {
    /// Graceful shutdown: refuse new upgrades, send every client close 1001, wait (up to
    /// `SHUTDOWN_TIMEOUT_MS`) for those connections to end, then stop the server.
    ///
    /// The listener stays open while the clients drain: `/healthz` answers 503 and a new
    /// upgrade is refused with 503, which a readiness probe reads as "send no one here",
    /// where a closed port would look like a crash. Only `ServerHandle::stop`, after the
    /// drain, closes the listener (actix's own signal handling, which would stop it at
    /// once on SIGTERM, is disabled in [`Application::build_with_backend`]).
    pub async fn shutdown(&self) {
        log::info!(
            "shutting down: closing {} connection(s) with 1001",
            self.admission.open_connections()
        );
        self.shutdown.trigger();
        let deadline = Instant::now() + self.config.shutdown_timeout;
        while self.admission.open_connections() > 0 && Instant::now() < deadline {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // What the connections left behind is stored (a cluster's last leaves) within
        // what is left of the timeout.
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = actix_web::rt::time::timeout(left, self.hub.send(Stopping)).await;
        self.server.stop(true).await;
        log::info!("stopped");
    }

    /// Rereads the TLS files now and serves what they hold to new connections (what
    /// `main` does on SIGHUP); open connections are not touched. The files are read on
    /// the reloader's own thread. On an error the previous certificate stays in service.
    pub async fn reload_tls(&self) -> Result<(), TlsReloadError> {
        match &self.tls {
            Some(reloader) => reloader.reload().await,
            None => Err(TlsReloadError::NotConfigured),
        }
    }

    /// How the certificate loads went (`None` without TLS).
    pub fn tls_status(&self) -> Option<TlsStatus> {
        self.tls.as_ref().map(TlsReloader::status)
    }

    /// WebSocket connections (`/ws` and `/echo`) whose actor is still alive.
    pub fn open_connections(&self) -> usize {
        self.admission.open_connections()
    }
}

fn connection_settings(config: &Config) -> ConnectionSettings {
    ConnectionSettings {
        heartbeat_interval: config.heartbeat_interval,
        client_timeout: config.client_timeout,
        close_timeout: config.close_timeout,
        rate_limit_per_s: config.rate_limit_per_s,
        rate_limit_burst: config.rate_limit_burst,
        rate_limit_strikes: config.rate_limit_strikes,
        node: config.node_id.clone(),
        verifier: config
            .auth_key
            .as_ref()
            .map(|key| Verifier::new(key, config.auth_leeway, config.auth_token_max_bytes)),
        limits: Limits {
            max_message_bytes: config.max_message_bytes,
            max_rooms: config.max_rooms_per_connection,
            max_pending_bytes: config.max_pending_bytes,
            history_len: config.history_len,
            max_name_chars: MAX_NAME_CHARS,
            max_room_chars: MAX_ROOM_CHARS,
            max_ref_chars: MAX_REF_CHARS,
        },
    }
}
