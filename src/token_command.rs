//! `hubbub token`: mints a connection token with the configured key, for development and
//! for trying the server by hand with authentication on:
//!
//! ```text
//! hubbub token --sub ann --name Ann --rooms 'lobby,team-*' --ttl 1h
//! ```
//!
//! prints the token alone on stdout (so `TOKEN=$(hubbub token ...)` works) and nothing
//! else. It reads the same configuration as the server (`.env`, the environment). Only
//! `AUTH_JWT_SECRET` can sign: with a public key configured, or none, it says why it
//! cannot and exits non-zero. The arguments are parsed here, checked by the same rules
//! the server applies to a token's claims, so a token it prints is one the server takes.

use std::{
    io::Write,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hubbub_core::RoomGrant;

use crate::{
    auth::{mint, TokenClaims},
    config::Config,
    protocol::{DisplayName, UserId, MAX_USER_CHARS},
};

/// How `hubbub token` is called.
const USAGE: &str = "\
usage: hubbub token --sub <user> [--name <display name>] [--rooms <list>] [--ttl <time>]

Prints a connection token (JWT) signed with AUTH_JWT_SECRET, read from .env or the
environment like the server's settings.

  --sub    the user (the token's sub), 1 to 128 characters; required
  --name   the display name the connection gets (wins over ?name=)
  --rooms  comma-separated room names and prefixes ending in *, e.g. 'lobby,team-*';
           without it, any room
  --ttl    how long the token is valid: a number and s, m, h or d (default 1h, at most 365d)";

/// The longest `--ttl` taken: a year, for a development token.
const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

/// What to put in the token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenArgs {
    sub: String,
    name: Option<String>,
    /// Each a room name or a prefix ending in `*`; `None`: any room.
    rooms: Option<Vec<String>>,
    ttl: Duration,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Invocation {
    Mint(TokenArgs),
    Help,
}

/// Parses the arguments after `token` (`--flag value` or `--flag=value`).
fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut sub = None;
    let mut name = None;
    let mut rooms = None;
    let mut ttl = Duration::from_secs(3600);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Invocation::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        if !matches!(flag.as_str(), "--sub" | "--name" | "--rooms" | "--ttl") {
            return Err(format!("unknown argument {arg:?}"));
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--sub" => {
                UserId::parse(&value).map_err(|_| {
                    format!(
                        "--sub must be 1 to {MAX_USER_CHARS} characters without control \
                         characters"
                    )
                })?;
                sub = Some(value);
            }
            "--name" => {
                let parsed = DisplayName::parse(&value).map_err(|err| {
                    format!(
                        "--name: {}",
                        crate::protocol::ProtocolError::from(err).message
                    )
                })?;
                name = Some(parsed.as_str().to_owned());
            }
            "--rooms" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|room| !room.is_empty())
                    .map(str::to_owned)
                    .collect();
                RoomGrant::parse(list.iter().map(String::as_str)).map_err(|err| {
                    format!(
                        "--rooms: {}",
                        crate::protocol::ProtocolError::from(err).message
                    )
                })?;
                rooms = Some(list);
            }
            _ => ttl = parse_ttl(&value)?,
        }
    }
    let sub = sub.ok_or("--sub is required: who the token is for")?;
    Ok(Invocation::Mint(TokenArgs {
        sub,
        name,
        rooms,
        ttl,
    }))
}

/// `90s`, `15m`, `1h`, `7d`: a whole number and a unit, more than zero, at most a year.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let problem = || format!("--ttl {text:?}: expected a whole number and s, m, h or d, like 1h");
    let text = text.trim();
    let (unit_at, _) = text.char_indices().last().ok_or_else(problem)?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| problem())?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(problem()),
    };
    let ttl = Duration::from_secs(number.saturating_mul(unit_seconds));
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(format!(
            "--ttl {text:?}: must be more than 0 and at most 365d"
        ));
    }
    Ok(ttl)
}

/// The token `args` describe, signed with the configured key, valid from `now`.
fn mint_token(config: &Config, args: &TokenArgs, now: SystemTime) -> Result<String, String> {
    let Some(key) = &config.auth_key else {
        return Err(
            "cannot sign: no key is configured; set AUTH_JWT_SECRET (at least 32 bytes, \
                    e.g. `openssl rand -hex 32`) in .env or the environment"
                .into(),
        );
    };
    let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = TokenClaims {
        sub: args.sub.clone(),
        name: args.name.clone(),
        rooms: args.rooms.clone(),
        iat,
        exp: iat + args.ttl.as_secs(),
    };
    mint(key, &claims).map_err(|err| err.to_string())
}

/// Runs `hubbub token` with the arguments after `token`; returns the exit status: 0 with
/// the token (or the usage) on stdout, 2 for bad arguments or settings, 1 when no token
/// can be signed.
pub fn main(args: Vec<String>) -> i32 {
    let args = match parse(args) {
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Ok(Invocation::Mint(args)) => args,
        Err(problem) => {
            eprintln!("hubbub token: {problem}\n\n{USAGE}");
            return 2;
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hubbub token: {err}");
            return 2;
        }
    };
    match mint_token(&config, &args, SystemTime::now()) {
        Ok(token) => {
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{token}").and_then(|()| stdout.flush()) {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("hubbub token: cannot write the token: {err}");
                    1
                }
            }
        }
        Err(problem) => {
            eprintln!("hubbub token: {problem}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Result<Invocation, String> {
        parse(line.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn the_readme_invocation_parses() {
        let parsed = args(&[
            "--sub",
            "ann",
            "--name",
            "Ann",
            "--rooms",
            "lobby,team-*",
            "--ttl",
            "1h",
        ]);
        assert_eq!(
            parsed,
            Ok(Invocation::Mint(TokenArgs {
                sub: "ann".into(),
                name: Some("Ann".into()),
                rooms: Some(vec!["lobby".into(), "team-*".into()]),
                ttl: Duration::from_secs(3600),
            }))
        );
        let inline = args(&["--sub=ann", "--rooms= lobby , x* ", "--ttl=2d"]).unwrap();
        let Invocation::Mint(inline) = inline else {
            panic!("a mint");
        };
        assert_eq!(inline.rooms, Some(vec!["lobby".into(), "x*".into()]));
        assert_eq!(inline.ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(args(&["--sub", "ann", "-h"]), Ok(Invocation::Help));
    }

    #[test]
    fn ttls_take_s_m_h_d_and_nothing_else() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("365d"), Ok(MAX_TTL));
        for bad in [
            "",
            "h",
            "1",
            "1w",
            "1é",
            "-1h",
            "0s",
            "1.5h",
            "366d",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (line, says) in [
            (&["--name", "Ann"][..], "--sub is required"),
            (&["--sub"][..], "--sub needs a value"),
            (&["--sub", ""][..], "--sub must be"),
            (&["--sub", "ann", "--rooms", "no spaces"][..], "--rooms"),
            (&["--sub", "ann", "--name", "  "][..], "--name"),
            (&["--sub", "ann", "--ttl", "soon"][..], "--ttl"),
            (&["--sub", "ann", "--admin"][..], "unknown argument"),
        ] {
            let err = args(line).unwrap_err();
            assert!(err.contains(says), "{line:?}: {err}");
        }
    }

    #[test]
    fn without_a_secret_there_is_nothing_to_sign_with() {
        let args = TokenArgs {
            sub: "ann".into(),
            name: None,
            rooms: None,
            ttl: Duration::from_secs(60),
        };
        let err = mint_token(&Config::default(), &args, SystemTime::now()).unwrap_err();
        assert!(err.contains("AUTH_JWT_SECRET"), "{err}");
    }
}
