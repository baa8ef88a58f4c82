//! `hubbub`: read the config, start logging, serve until Ctrl-C or SIGTERM (and with
//! TLS, reload the certificate on SIGHUP). `hubbub token ...` mints a connection token
//! instead (`hubbub::token_command`).

// Unsafe code is allowed item by item, each with its SAFETY reasoning.
#![deny(unsafe_code)]

use hubbub::{config::Config, startup::Application};

/// jemalloc (the default `jemalloc` feature): messages are freed on another thread than
/// the one that made them, which glibc's malloc handles slowly (docs/benchmarks.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => serve(),
        Some("token") => std::process::exit(hubbub::token_command::main(args.collect())),
        Some(other) => {
            eprintln!(
                "hubbub: unknown command {other:?}; run `hubbub` to serve, or `hubbub token --help`"
            );
            std::process::exit(2);
        }
    }
}

#[actix_web::main]
async fn serve() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            // Straight to stderr, not through the logger: RUST_LOG may be filtering it,
            // and this is the one message the operator must see.
            eprintln!("hubbub: {err}");
            std::process::exit(2);
        }
    };
    raise_open_file_limit(&config);
    let bind = config.bind_address();
    let node = config.node_id.clone();
    // Listen for signals before announcing the port, so a SIGTERM right after start-up
    // already shuts down gracefully.
    let signal = shutdown_signal();
    let app = match Application::build(config) {
        Ok(app) => app,
        Err(err) => {
            // A TLS file that does not load: a configuration error, reported as the others.
            if let Some(config_err) = config_error(&err) {
                eprintln!("hubbub: {config_err}");
                std::process::exit(2);
            }
            log::error!("cannot start on {bind}: {err}");
            return Err(err);
        }
    };
    let controller = app.controller();
    // Before the port is announced, as the shutdown signals are.
    reload_certificate_on_hangup(controller.clone(), app.serves_tls());
    let scheme = if app.serves_tls() { "https" } else { "http" };
    log::info!(
        "node {node} listening on {scheme}://{}:{}",
        host_of(&bind),
        app.port()
    );
    actix_web::rt::spawn(async move {
        signal.await;
        controller.shutdown().await;
    });
    app.run_until_stopped().await
}

fn config_error(err: &std::io::Error) -> Option<&hubbub::config::ConfigError> {
    err.get_ref()?.downcast_ref()
}

/// SIGHUP reloads the TLS certificate at once (the files are also polled, every
/// `TLS_RELOAD_INTERVAL_MS`): what a renewal hook sends. Without TLS it is handled too,
/// and only logged: its default action would end the process, and `systemctl reload`
/// (docs/deploy.md's unit sends SIGHUP) must never stop a server. The reloader logs the
/// outcome.
#[cfg(unix)]
fn reload_certificate_on_hangup(controller: hubbub::startup::Controller, tls: bool) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            log::warn!("cannot handle SIGHUP ({err}); the TLS files are still polled");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangup.recv().await.is_some() {
            if !tls {
                log::info!("SIGHUP: no TLS configured, nothing to reload");
                continue;
            }
            log::info!("SIGHUP: reloading the TLS certificate");
            // Success and failure are both logged by the reloader.
            let _ = controller.reload_tls().await;
        }
    });
}

#[cfg(not(unix))]
fn reload_certificate_on_hangup(_: hubbub::startup::Controller, _: bool) {}

fn host_of(bind: &str) -> &str {
    bind.rsplit_once(':').map_or(bind, |(host, _)| host)
}

/// Ctrl-C (SIGINT) and SIGTERM (what service managers and `docker stop` send). On Unix
/// the handlers are installed when this is called, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt());
    let mut terminate = signal(SignalKind::terminate());
    async move {
        match (&mut interrupt, &mut terminate) {
            (Ok(interrupt), Ok(terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                log::warn!("cannot install signal handlers; falling back to Ctrl-C only");
                let _ = actix_web::rt::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = actix_web::rt::signal::ctrl_c().await;
    }
}

/// Each WebSocket connection holds two descriptors (its socket, and the duplicate the
/// server keeps to reset it if it jams), so the usual soft limit of 1024 caps a server at
/// about 500 clients. Raise the soft limit to the hard one and warn if even that is short
/// of what `MAX_CONNECTIONS` needs.
#[cfg(unix)]
fn raise_open_file_limit(config: &Config) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    /// Descriptors an open WebSocket connection holds.
    const PER_CONNECTION: u64 = 2;
    /// The listener, the runtime's own, the log, static files and HTTP API clients.
    const HEADROOM: u64 = 64;
    let needed = (config.max_connections as u64)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(HEADROOM);
    if limit.rlim_cur < needed {
        log::warn!(
            "open-file limit {} is below the {needed} that MAX_CONNECTIONS={} needs \
             (two per connection: its socket and the duplicate kept to reset it); \
             raise `ulimit -n` or lower MAX_CONNECTIONS",
            limit.rlim_cur,
            config.max_connections
        );
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit(_: &Config) {}
