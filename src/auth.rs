//! Connection tokens (JWT): the key that checks them ([`AuthKey`], from the config), the
//! [`Verifier`] that every `/ws` upgrade and every `refresh` asks, the [`Claims`] it
//! vouches for, and [`mint`], which signs a token for `hubbub token`.
//!
//! The algorithm comes from the configured key, never from a token: HS256 for
//! `AUTH_JWT_SECRET`, and for `AUTH_JWT_PUBLIC_KEY_FILE` RS256 or ES256 as the key in the
//! file is RSA or EC (P-256). A token whose header names anything else (`none`, or HS256
//! "signed" with the public key as a shared secret) is refused before its signature is
//! even looked at. Expiry (`exp`, `nbf`) is checked here, to the millisecond, with the
//! configured leeway for clock skew.
//!
//! Nothing here logs, and nothing here formats a token: errors say what is wrong with
//! it, never what it is. What the room rules make of the claims (users, grants) is
//! `hubbub-core`'s [`Access`](hubbub_core::Access).

use std::{fmt, sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hubbub_core::RoomGrant;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    config::Secret,
    protocol::{DisplayName, Timestamp, UserId},
};

/// The shortest `AUTH_JWT_SECRET` accepted, in bytes: RFC 7518 section 3.2 wants an
/// HS256 key at least as long as the hash (256 bits); a shorter one can be guessed
/// offline from any token it signed.
pub const MIN_SECRET_BYTES: usize = 32;

/// The latest `exp` or `nbf` taken, in seconds since the epoch (the last second of the
/// year 9999): every later one is a mistake, and timestamps past it have no RFC 3339
/// form of the usual width.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// What checks connection tokens: a shared secret (HS256), or a public key (RS256 or
/// ES256, which can only verify).
#[derive(Clone)]
pub enum AuthKey {
    /// `AUTH_JWT_SECRET`: its bytes exactly as written.
    Secret(Secret),
    /// `AUTH_JWT_PUBLIC_KEY_FILE`, read and checked.
    PublicKey(PublicKey),
}

impl AuthKey {
    /// The one algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            AuthKey::Secret(_) => Algorithm::HS256,
            AuthKey::PublicKey(key) => key.algorithm,
        }
    }
}

/// Printed without the secret (its [`Secret`] hides itself) and without the key's
/// bytes.
impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthKey::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
            AuthKey::PublicKey(key) => key.fmt(f),
        }
    }
}

/// A public key from a PEM file, and the algorithm its type implies.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The algorithm, not the key's bytes.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.algorithm).finish()
    }
}

impl PublicKey {
    /// The key in a PEM file (`-----BEGIN PUBLIC KEY-----`, or PKCS#1's `RSA PUBLIC
    /// KEY`): an RSA key of at least 2048 bits (RS256) or an EC key on P-256 (ES256).
    /// Anything else (a private key, a certificate, another curve, a short RSA key) is
    /// refused with what to do instead.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, String> {
        let parsed = pem::parse(pem).map_err(|err| format!("not a PEM file: {err}"))?;
        match parsed.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                return Err("it holds a private key; give the public key \
                            (openssl pkey -in private.pem -pubout -out public.pem)"
                    .into())
            }
            "CERTIFICATE" => {
                return Err("it holds a certificate; give its public key \
                            (openssl x509 -in cert.pem -pubkey -noout > public.pem)"
                    .into())
            }
            other => return Err(format!("it holds a {other:?}, not a public key")),
        }
        let asn1 = simple_asn1::from_der(parsed.contents())
            .map_err(|err| format!("the key is not valid DER: {err}"))?;
        if parsed.tag() == "PUBLIC KEY" {
            if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                if !contains_oid(&asn1, &simple_asn1::oid!(1, 2, 840, 10_045, 3, 1, 7)) {
                    return Err("an EC key on a curve other than P-256: only ES256 \
                                (P-256) EC keys are supported"
                        .into());
                }
                return Ok(PublicKey {
                    algorithm: Algorithm::ES256,
                    key,
                });
            }
        }
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|_| "neither an RSA nor an EC (P-256) public key".to_string())?;
        let bits = rsa_modulus_bits(&asn1)
            .ok_or_else(|| "an RSA key whose modulus cannot be read".to_string())?;
        if bits < 2048 {
            return Err(format!(
                "an RSA key of {bits} bits: RS256 needs at least 2048"
            ));
        }
        Ok(PublicKey {
            algorithm: Algorithm::RS256,
            key,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Whether `oid` appears anywhere in `blocks` (an EC key's curve, in its algorithm
/// parameters).
fn contains_oid(blocks: &[simple_asn1::ASN1Block], oid: &simple_asn1::OID) -> bool {
    use simple_asn1::ASN1Block;
    blocks.iter().any(|block| match block {
        ASN1Block::ObjectIdentifier(_, found) => found == oid,
        ASN1Block::Sequence(_, inner) | ASN1Block::Set(_, inner) => contains_oid(inner, oid),
        _ => false,
    })
}

/// The size of an RSA public key's modulus, in bits: from PKCS#1's `RSAPublicKey`
/// (`SEQUENCE { modulus, exponent }`), or from the one inside SubjectPublicKeyInfo's
/// bit string.
fn rsa_modulus_bits(blocks: &[simple_asn1::ASN1Block]) -> Option<u64> {
    use simple_asn1::ASN1Block;
    match blocks {
        [ASN1Block::Sequence(_, fields)] => match fields.as_slice() {
            [ASN1Block::Integer(_, modulus), ASN1Block::Integer(_, _)] => Some(modulus.bits()),
            [ASN1Block::Sequence(_, _), ASN1Block::BitString(_, _, key)] => {
                rsa_modulus_bits(&simple_asn1::from_der(key).ok()?)
            }
            _ => None,
        },
        _ => None,
    }
}

/// What a valid token says, checked: who the connection is, until when, and what the
/// room rules need (its name and rooms).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `sub`.
    pub user: UserId,
    /// `exp`: the connection is closed with 4001 a leeway after it, unless refreshed.
    pub expires_at: Timestamp,
    /// `name`, which wins over `?name=`.
    pub name: Option<DisplayName>,
    /// `rooms`; absent: any room.
    pub rooms: RoomGrant,
}

/// Why a token was refused. The text says what is wrong, never what the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No token where one is needed.
    Missing,
    /// Both `?token=` and `Authorization: Bearer`: which one is meant?
    Twice,
    /// Over `AUTH_TOKEN_MAX_BYTES`.
    TooLong { max: usize },
    /// Not three base64url parts of JSON.
    Malformed,
    /// Signed (or not) with another algorithm than the key's.
    WrongAlgorithm { expected: Algorithm },
    /// The signature is not the key's.
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    Expired,
    /// `nbf` (less the leeway) has not come yet.
    NotYetValid,
    /// A claim hubbub requires is absent (`sub`, `exp`).
    MissingClaim(&'static str),
    /// A claim hubbub reads is there but unusable.
    BadClaim {
        claim: &'static str,
        problem: String,
    },
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRefusal::Missing => f.write_str(
                "this server needs a token: give it as ?token=... or Authorization: Bearer ...",
            ),
            TokenRefusal::Twice => {
                f.write_str("two tokens, one in ?token= and one in Authorization: give it once")
            }
            TokenRefusal::TooLong { max } => {
                write!(
                    f,
                    "the token is longer than the {max} bytes this server takes"
                )
            }
            TokenRefusal::Malformed => {
                f.write_str("the token is not a JWT (three base64url parts of JSON)")
            }
            TokenRefusal::WrongAlgorithm { expected } => {
                write!(f, "the token is not signed with {expected:?}, the only algorithm this server takes")
            }
            TokenRefusal::BadSignature => {
                f.write_str("the token's signature does not match this server's key")
            }
            TokenRefusal::Expired => f.write_str("the token has expired"),
            TokenRefusal::NotYetValid => f.write_str("the token is not valid yet (nbf)"),
            TokenRefusal::MissingClaim(claim) => write!(f, "the token has no {claim} claim"),
            TokenRefusal::BadClaim { claim, problem } => {
                write!(f, "the token's {claim} claim is unusable: {problem}")
            }
        }
    }
}

/// How a token's signature is checked: by the key's kind.
enum SignatureCheck {
    /// `AUTH_JWT_SECRET`: the HMAC key, prepared once. jsonwebtoken would rebuild it
    /// (two SHA-256 blocks) and base64-encode the expected signature on every check,
    /// about a third of what a token costs a connect (docs/benchmarks.md).
    Hs256(ring::hmac::Key),
    /// `AUTH_JWT_PUBLIC_KEY_FILE`: RS256 or ES256, through jsonwebtoken.
    PublicKey {
        key: DecodingKey,
        validation: Validation,
    },
}

/// Checks tokens with the configured key; built once at start-up and shared.
pub struct Verifier {
    check: SignatureCheck,
    algorithm: Algorithm,
    /// How far `exp` and `nbf` may be off, for clock skew (`AUTH_LEEWAY_MS`).
    leeway: Duration,
    /// `AUTH_TOKEN_MAX_BYTES`.
    max_token_bytes: usize,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("leeway", &self.leeway)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

/// The claims as they come, each any JSON (or absent), so each problem gets its own
/// answer; the rest is ignored.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
    /// `null` is kept as `Some(Null)`, not taken for absent: only a token without
    /// `rooms` allows every room, and a `null` there is more likely a bug in the issuer
    /// than a grant of everything.
    #[serde(default, deserialize_with = "present")]
    rooms: Option<Value>,
}

/// A claim that is there, whatever its value (`null` too).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Verifier {
    pub fn new(key: &AuthKey, leeway: Duration, max_token_bytes: usize) -> Arc<Self> {
        let algorithm = key.algorithm();
        let check = match key {
            AuthKey::Secret(secret) => SignatureCheck::Hs256(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                secret.expose().as_bytes(),
            )),
            AuthKey::PublicKey(public) => {
                let mut validation = Validation::new(algorithm);
                // The claims are checked below, with clearer answers and to the
                // millisecond; jsonwebtoken checks the header's algorithm and the
                // signature.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                validation.validate_aud = false;
                validation.required_spec_claims.clear();
                SignatureCheck::PublicKey {
                    key: public.key.clone(),
                    validation,
                }
            }
        };
        Arc::new(Self {
            check,
            algorithm,
            leeway,
            max_token_bytes,
        })
    }

    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The claims of `token` if it is signed with the key, in time at `now` and
    /// well-formed.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenRefusal> {
        if token.is_empty() {
            return Err(TokenRefusal::Missing);
        }
        if token.len() > self.max_token_bytes {
            return Err(TokenRefusal::TooLong {
                max: self.max_token_bytes,
            });
        }
        let claims = match &self.check {
            SignatureCheck::Hs256(key) => self.verify_hs256(key, token)?,
            SignatureCheck::PublicKey { key, validation } => {
                jsonwebtoken::decode::<RawClaims>(token, key, validation)
                    .map_err(|err| self.refusal(token, err.kind()))?
                    .claims
            }
        };
        self.check(claims, now)
    }

    /// An HS256 token's claims, checked in jsonwebtoken's order (the header, its `alg`,
    /// the signature, then the claims) with the same answers, but with the prepared
    /// key. The algorithm is the key's: any other `alg` (`none` included) is refused
    /// before the signature is looked at; the signature is compared in constant time.
    fn verify_hs256(&self, key: &ring::hmac::Key, token: &str) -> Result<RawClaims, TokenRefusal> {
        #[derive(Deserialize)]
        struct JwtHeader<'a> {
            #[serde(borrow)]
            alg: std::borrow::Cow<'a, str>,
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefusal::Malformed);
        };
        // What was signed: `header.payload`.
        let signed_len = header.len() + 1 + payload.len();
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenRefusal::Malformed)?;
        let header: JwtHeader<'_> =
            serde_json::from_slice(&header).map_err(|_| TokenRefusal::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenRefusal::WrongAlgorithm {
                expected: self.algorithm,
            });
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenRefusal::Malformed)?;
        let signed = &token[..signed_len];
        ring::hmac::verify(key, signed.as_bytes(), &signature)
            .map_err(|_| TokenRefusal::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRefusal::Malformed)?;
        // Claims are a JSON object; serde would also read a struct from an array.
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return Err(TokenRefusal::Malformed);
        }
        serde_json::from_slice(&payload).map_err(|_| TokenRefusal::Malformed)
    }

    /// A verification error as the client should hear it.
    fn refusal(&self, token: &str, kind: &ErrorKind) -> TokenRefusal {
        let wrong_algorithm = TokenRefusal::WrongAlgorithm {
            expected: self.algorithm,
        };
        match kind {
            ErrorKind::InvalidSignature => TokenRefusal::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => wrong_algorithm,
            // A header that names an algorithm jsonwebtoken has no variant for (`none`)
            // fails as JSON; say what it is.
            _ if header_algorithm(token)
                .is_some_and(|alg| alg != format!("{:?}", self.algorithm)) =>
            {
                wrong_algorithm
            }
            _ => TokenRefusal::Malformed,
        }
    }

    /// The claims hubbub reads, each checked.
    fn check(&self, raw: RawClaims, now: Timestamp) -> Result<Claims, TokenRefusal> {
        let leeway = self.leeway.as_millis() as i64;
        let user = match raw.sub {
            None => return Err(TokenRefusal::MissingClaim("sub")),
            Some(Value::String(sub)) => UserId::parse(&sub).map_err(|err| bad_claim("sub", err))?,
            Some(_) => return Err(bad("sub", "it must be a string")),
        };
        let expires_at = match raw.exp {
            None => return Err(TokenRefusal::MissingClaim("exp")),
            Some(exp) => numeric_date("exp", &exp)?,
        };
        if now.millis() >= expires_at.millis().saturating_add(leeway) {
            return Err(TokenRefusal::Expired);
        }
        if let Some(nbf) = raw.nbf {
            let not_before = numeric_date("nbf", &nbf)?;
            if now.millis().saturating_add(leeway) < not_before.millis() {
                return Err(TokenRefusal::NotYetValid);
            }
        }
        let name = match raw.name {
            None => None,
            Some(Value::String(name)) => {
                Some(DisplayName::parse(&name).map_err(|err| bad_claim("name", err))?)
            }
            Some(_) => return Err(bad("name", "it must be a string")),
        };
        let rooms = match raw.rooms {
            None => RoomGrant::Any,
            Some(Value::Array(patterns)) => {
                let patterns: Option<Vec<&str>> = patterns.iter().map(Value::as_str).collect();
                let patterns = patterns.ok_or_else(|| {
                    bad(
                        "rooms",
                        "it must be a list of strings (room names or prefixes ending in *)",
                    )
                })?;
                RoomGrant::parse(patterns).map_err(|err| bad_claim("rooms", err))?
            }
            Some(_) => {
                return Err(bad(
                    "rooms",
                    "it must be a list of strings (room names or prefixes ending in *)",
                ))
            }
        };
        Ok(Claims {
            user,
            expires_at,
            name,
            rooms,
        })
    }
}

fn bad(claim: &'static str, problem: &str) -> TokenRefusal {
    TokenRefusal::BadClaim {
        claim,
        problem: problem.into(),
    }
}

fn bad_claim(claim: &'static str, err: crate::protocol::ValidationError) -> TokenRefusal {
    TokenRefusal::BadClaim {
        claim,
        problem: crate::protocol::ProtocolError::from(err).message,
    }
}

/// A JWT NumericDate (seconds since the epoch, maybe with a fraction) as a timestamp.
fn numeric_date(claim: &'static str, value: &Value) -> Result<Timestamp, TokenRefusal> {
    let seconds = value
        .as_f64()
        .filter(|seconds| (0.0..=MAX_NUMERIC_DATE).contains(seconds))
        .ok_or_else(|| {
            bad(
                claim,
                "it must be a number of seconds since 1970, before the year 10000",
            )
        })?;
    Ok(Timestamp::from_millis((seconds * 1000.0) as i64))
}

/// The `alg` a token's header names, if its header can be read at all.
fn header_algorithm(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: Value = serde_json::from_slice(&json).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// What `hubbub token` puts in a token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenClaims {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// Seconds since the epoch.
    pub iat: u64,
    pub exp: u64,
}

/// Why no token could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintError {
    /// Only a public key is configured: it verifies, it cannot sign.
    PublicKeyOnly(Algorithm),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::PublicKeyOnly(algorithm) => write!(
                f,
                "cannot sign: AUTH_JWT_PUBLIC_KEY_FILE holds a public key ({algorithm:?}), which \
                 only verifies tokens; mint them where the private key is, or set AUTH_JWT_SECRET \
                 (HS256) instead"
            ),
        }
    }
}

/// A token for `claims`, signed with `key` (HS256; a public key cannot sign).
pub fn mint(key: &AuthKey, claims: &TokenClaims) -> Result<String, MintError> {
    match key {
        AuthKey::Secret(secret) => {
            let key = EncodingKey::from_secret(secret.expose().as_bytes());
            // Serializing these claims cannot fail, nor can HMAC signing.
            Ok(
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
                    .expect("HS256 signs any claims that serialize"),
            )
        }
        AuthKey::PublicKey(public) => Err(MintError::PublicKeyOnly(public.algorithm)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-that-is-32-bytes-long!";
    /// 2026-12-01T09:00:00Z.
    const NOW_SECONDS: u64 = 1_796_115_600;

    fn now() -> Timestamp {
        Timestamp::from_millis(NOW_SECONDS as i64 * 1000)
    }

    fn verifier() -> Arc<Verifier> {
        Verifier::new(
            &AuthKey::Secret(Secret::new(SECRET)),
            Duration::from_secs(30),
            4096,
        )
    }

    fn signed(claims: Value) -> String {
        signed_with(SECRET, Algorithm::HS256, claims)
    }

    fn signed_with(secret: &str, algorithm: Algorithm, claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    /// A token with any header and claims, and any signature.
    fn forged(header: Value, claims: Value, signature: &str) -> String {
        let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.{signature}", part(&header), part(&claims))
    }

    fn valid_claims() -> Value {
        serde_json::json!({"sub": "ann", "exp": NOW_SECONDS + 60})
    }

    #[test]
    fn a_valid_token_gives_its_claims() {
        let token = signed(serde_json::json!({
            "sub": "ann", "exp": NOW_SECONDS + 60, "nbf": NOW_SECONDS - 1,
            "name": " Ann ", "rooms": ["lobby", "team-*"], "extra": {"ignored": true},
        }));
        let claims = verifier().verify(&token, now()).unwrap();
        assert_eq!(claims.user.as_str(), "ann");
        assert_eq!(claims.expires_at.millis(), (NOW_SECONDS as i64 + 60) * 1000);
        assert_eq!(claims.name.unwrap().as_str(), "Ann");
        assert_eq!(claims.rooms, RoomGrant::parse(["lobby", "team-*"]).unwrap());
        let minimal = verifier().verify(&signed(valid_claims()), now()).unwrap();
        assert_eq!((minimal.name, minimal.rooms), (None, RoomGrant::Any));
    }

    #[test]
    fn the_leeway_stretches_exp_and_nbf_and_no_more() {
        let verifier = verifier();
        let at = |offset_ms: i64| Timestamp::from_millis(NOW_SECONDS as i64 * 1000 + offset_ms);
        let expiring = signed(serde_json::json!({"sub": "ann", "exp": NOW_SECONDS}));
        assert!(verifier.verify(&expiring, at(29_999)).is_ok());
        assert_eq!(
            verifier.verify(&expiring, at(30_000)),
            Err(TokenRefusal::Expired)
        );
        let later = signed(
            serde_json::json!({"sub": "ann", "exp": NOW_SECONDS + 600, "nbf": NOW_SECONDS + 60}),
        );
        assert!(verifier.verify(&later, at(30_000)).is_ok());
        assert_eq!(
            verifier.verify(&later, at(29_999)),
            Err(TokenRefusal::NotYetValid)
        );
    }

    #[test]
    fn every_kind_of_bad_token_gets_its_own_refusal() {
        let verifier = verifier();
        let cases = [
            ("", TokenRefusal::Missing),
            ("garbage", TokenRefusal::Malformed),
            ("a.b.c", TokenRefusal::Malformed),
            (
                &signed_with(
                    "another-secret-that-is-32-bytes-long",
                    Algorithm::HS256,
                    valid_claims(),
                ),
                TokenRefusal::BadSignature,
            ),
            (
                &signed_with(SECRET, Algorithm::HS512, valid_claims()),
                TokenRefusal::WrongAlgorithm {
                    expected: Algorithm::HS256,
                },
            ),
            (
                &forged(
                    serde_json::json!({"alg": "none", "typ": "JWT"}),
                    valid_claims(),
                    "",
                ),
                TokenRefusal::WrongAlgorithm {
                    expected: Algorithm::HS256,
                },
            ),
            (
                &signed(serde_json::json!({"sub": "ann", "exp": NOW_SECONDS - 31})),
                TokenRefusal::Expired,
            ),
            (
                &signed(
                    serde_json::json!({"sub": "ann", "exp": NOW_SECONDS + 600, "nbf": NOW_SECONDS + 31}),
                ),
                TokenRefusal::NotYetValid,
            ),
            (
                &signed(serde_json::json!({"exp": NOW_SECONDS + 60})),
                TokenRefusal::MissingClaim("sub"),
            ),
            (
                &signed(serde_json::json!({"sub": "ann"})),
                TokenRefusal::MissingClaim("exp"),
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(
                verifier.verify(token, now()),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }

    #[test]
    fn claims_of_the_wrong_type_are_bad_claims() {
        let verifier = verifier();
        let exp = NOW_SECONDS + 60;
        for (claims, claim) in [
            (serde_json::json!({"sub": 42, "exp": exp}), "sub"),
            (serde_json::json!({"sub": "", "exp": exp}), "sub"),
            (serde_json::json!({"sub": "ann", "exp": "tomorrow"}), "exp"),
            (serde_json::json!({"sub": "ann", "exp": -1}), "exp"),
            (serde_json::json!({"sub": "ann", "exp": 1e300}), "exp"),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "nbf": "now"}),
                "nbf",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "name": ["Ann"]}),
                "name",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "name": " "}),
                "name",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "rooms": "lobby"}),
                "rooms",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "rooms": [1, 2]}),
                "rooms",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "rooms": {"lobby": true}}),
                "rooms",
            ),
            (
                serde_json::json!({"sub": "ann", "exp": exp, "rooms": ["no spaces"]}),
                "rooms",
            ),
        ] {
            match verifier.verify(&signed(claims.clone()), now()) {
                Err(TokenRefusal::BadClaim { claim: named, .. }) => {
                    assert_eq!(named, claim, "{claims}")
                }
                other => panic!("{claims}: {other:?}"),
            }
        }
        // A null `rooms` is not an absent one: refused, not read as "any room".
        let claims = serde_json::json!({"sub": "ann", "exp": exp, "rooms": null});
        match verifier.verify(&signed(claims), now()) {
            Err(TokenRefusal::BadClaim { claim, .. }) => assert_eq!(claim, "rooms"),
            other => panic!("a null rooms claim: {other:?}"),
        }
        // Absent: any room.
        let claims = serde_json::json!({"sub": "ann", "exp": exp});
        assert_eq!(
            verifier.verify(&signed(claims), now()).unwrap().rooms,
            RoomGrant::Any
        );
        // Not an object at all.
        let token = signed_with(SECRET, Algorithm::HS256, serde_json::json!([1]));
        assert_eq!(verifier.verify(&token, now()), Err(TokenRefusal::Malformed));
    }

    #[test]
    fn a_token_over_the_cap_is_refused_before_it_is_read() {
        let verifier = Verifier::new(&AuthKey::Secret(Secret::new(SECRET)), Duration::ZERO, 300);
        let padded = signed(serde_json::json!({
            "sub": "ann", "exp": NOW_SECONDS + 60, "pad": "x".repeat(300)
        }));
        assert_eq!(
            verifier.verify(&padded, now()),
            Err(TokenRefusal::TooLong { max: 300 })
        );
        assert!(verifier.verify(&signed(valid_claims()), now()).is_ok());
    }

    #[test]
    fn no_refusal_repeats_the_token() {
        // Every kind of refusal, the ones that describe a claim's value among them: the
        // message names what is wrong, never a part of the token.
        let verifier = verifier();
        let other_key = "another-secret-that-is-32-bytes-long";
        let tokens = [
            signed_with(other_key, Algorithm::HS256, valid_claims()),
            signed_with(SECRET, Algorithm::HS384, valid_claims()),
            signed(serde_json::json!({"sub": "ann", "exp": NOW_SECONDS - 600})),
            signed(serde_json::json!({"sub": "ann", "exp": NOW_SECONDS + 60, "rooms": ["a b"]})),
            signed(serde_json::json!({"sub": 7, "exp": NOW_SECONDS + 60})),
            signed(serde_json::json!({"exp": NOW_SECONDS + 60})),
            format!("{}.garbage", signed(valid_claims())),
        ];
        for token in &tokens {
            let refusal = verifier.verify(token, now()).unwrap_err();
            for shown in [refusal.to_string(), format!("{refusal:?}")] {
                for part in token.split('.').filter(|part| part.len() >= 8) {
                    assert!(!shown.contains(part), "{shown} repeats {part}");
                }
            }
        }
    }

    #[test]
    fn a_minted_token_verifies_and_a_public_key_cannot_mint() {
        let key = AuthKey::Secret(Secret::new(SECRET));
        let claims = TokenClaims {
            sub: "ann".into(),
            name: Some("Ann".into()),
            rooms: Some(vec!["lobby".into(), "team-*".into()]),
            iat: NOW_SECONDS,
            exp: NOW_SECONDS + 3600,
        };
        let token = mint(&key, &claims).unwrap();
        let verified = verifier().verify(&token, now()).unwrap();
        assert_eq!(verified.user.as_str(), "ann");
        assert_eq!(verified.name.unwrap().as_str(), "Ann");
    }

    fn key_file(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    #[test]
    fn the_algorithm_follows_the_public_keys_type() {
        for (file, algorithm) in [
            ("rsa-public.pem", Algorithm::RS256),
            ("rsa-public-pkcs1.pem", Algorithm::RS256),
            ("ec-public.pem", Algorithm::ES256),
        ] {
            let key =
                PublicKey::from_pem(&key_file(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
            assert_eq!(key.algorithm(), algorithm, "{file}");
        }
    }

    #[test]
    fn a_file_that_holds_no_usable_public_key_is_refused_saying_why() {
        for (file, says) in [
            ("rsa-private.pem", "private key"),
            ("ec-private.pem", "private key"),
            ("rsa1024-public.pem", "1024 bits"),
            ("ec-p384-public.pem", "P-256"),
            ("ed25519-public.pem", "neither"),
            ("README.md", "not a PEM file"),
        ] {
            let err = PublicKey::from_pem(&key_file(file))
                .err()
                .unwrap_or_else(|| panic!("{file} is refused"));
            assert!(err.contains(says), "{file}: {err}");
        }
        let certificate = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(PublicKey::from_pem(certificate)
            .unwrap_err()
            .contains("certificate"));
    }

    #[test]
    fn tokens_signed_with_the_private_key_verify_and_algorithm_confusion_does_not() {
        let now_ms = now();
        for (public, private, algorithm) in [
            ("rsa-public.pem", "rsa-private.pem", Algorithm::RS256),
            ("ec-public.pem", "ec-private.pem", Algorithm::ES256),
        ] {
            let public_pem = key_file(public);
            let key = AuthKey::PublicKey(PublicKey::from_pem(&public_pem).unwrap());
            let verifier = Verifier::new(&key, Duration::from_secs(30), 4096);
            let signing = match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&key_file(private)).unwrap(),
                _ => EncodingKey::from_ec_pem(&key_file(private)).unwrap(),
            };
            let token =
                jsonwebtoken::encode(&Header::new(algorithm), &valid_claims(), &signing).unwrap();
            assert_eq!(
                verifier.verify(&token, now_ms).unwrap().user.as_str(),
                "ann",
                "{public}"
            );
            // The classic confusion: HS256 with the public key's PEM as the secret.
            let confused = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &valid_claims(),
                &EncodingKey::from_secret(&public_pem),
            )
            .unwrap();
            assert_eq!(
                verifier.verify(&confused, now_ms),
                Err(TokenRefusal::WrongAlgorithm {
                    expected: algorithm
                }),
                "{public}"
            );
            let unsigned = forged(serde_json::json!({"alg": "none"}), valid_claims(), "");
            assert_eq!(
                verifier.verify(&unsigned, now_ms),
                Err(TokenRefusal::WrongAlgorithm {
                    expected: algorithm
                })
            );
            assert_eq!(
                mint(
                    &key,
                    &TokenClaims {
                        sub: "ann".into(),
                        name: None,
                        rooms: None,
                        iat: 0,
                        exp: 1
                    }
                ),
                Err(MintError::PublicKeyOnly(algorithm))
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = AuthKey::Secret(Secret::new(SECRET));
        let verifier = Verifier::new(&key, Duration::from_secs(30), 4096);
        for shown in [format!("{key:?}"), format!("{verifier:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("a-test-secret"), "{shown}");
        }
    }
}
