//! Checking an endpoint's URL when it is registered or changed, and the
//! HTTP client that sends deliveries, which checks every address again at
//! connection time (see [`crate::domain::target`] for the rules).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::WebhooksOptions;
use crate::domain::MAX_URL_LENGTH;
use crate::domain::target::forbidden_reason;
use crate::error::FieldError;

/// How long a registration waits for DNS.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = "Switchboard-Webhooks/1";

/// What the options allow as a target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetPolicy {
    pub allow_private: bool,
    pub allow_http: bool,
}

impl TargetPolicy {
    pub fn of(options: &WebhooksOptions) -> Self {
        Self {
            allow_private: options.allow_private_targets,
            allow_http: options.allow_http,
        }
    }
}

/// Checks an endpoint URL (the field `url`): absolute, `https` (or `http`
/// when allowed), no credentials, and a host whose every address is public
/// unless private targets are allowed. Answers the normalized URL (without
/// a fragment).
pub(crate) async fn check_url(text: &str, policy: TargetPolicy) -> Result<String, FieldError> {
    let invalid = |message: String| FieldError::new("url", message);
    let text = text.trim();
    if text.len() > MAX_URL_LENGTH {
        return Err(invalid(format!(
            "must be at most {MAX_URL_LENGTH} characters"
        )));
    }
    let mut url = Url::parse(text).map_err(|error| invalid(format!("is not a URL: {error}")))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err(invalid("must use https".into())),
        other => {
            return Err(invalid(format!("must use https, not {other}")));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials".into()));
    }
    url.set_fragment(None);
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        None => return Err(invalid("must name a host".into())),
        Some(Host::Ipv4(address)) => check_address(IpAddr::V4(address), policy).map_err(invalid)?,
        Some(Host::Ipv6(address)) => check_address(IpAddr::V6(address), policy).map_err(invalid)?,
        Some(Host::Domain(domain)) if !policy.allow_private => {
            let addresses = lookup(domain, port).await.map_err(invalid)?;
            for address in addresses {
                check_address(address.ip(), policy)
                    .map_err(|reason| invalid(format!("host {domain} resolves to {reason}")))?;
            }
        }
        Some(Host::Domain(_)) => {}
    }
    Ok(url.into())
}

/// Checks the host of a stored URL before an attempt when it is an IP
/// address (names are checked by [`GuardedResolver`]).
pub(crate) fn check_literal_host(url: &Url, allow_private: bool) -> Result<(), String> {
    let policy = TargetPolicy {
        allow_private,
        allow_http: true,
    };
    match url.host() {
        Some(Host::Ipv4(address)) => check_address(IpAddr::V4(address), policy),
        Some(Host::Ipv6(address)) => check_address(IpAddr::V6(address), policy),
        Some(Host::Domain(_)) => Ok(()),
        None => Err("the URL has no host".into()),
    }
}

fn check_address(address: IpAddr, policy: TargetPolicy) -> Result<(), String> {
    match forbidden_reason(address) {
        Some(reason) if !policy.allow_private => Err(format!(
            "{address}, {reason}: webhooks are sent to public addresses only"
        )),
        _ => Ok(()),
    }
}

async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addresses = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("host {host} did not resolve within {LOOKUP_TIMEOUT:?}"))?
        .map_err(|error| format!("host {host} does not resolve: {error}"))?
        .collect::<Vec<_>>();
    if addresses.is_empty() {
        return Err(format!("host {host} has no address"));
    }
    Ok(addresses)
}

/// Resolves names for the delivery client with the system resolver, and
/// drops every address that is not public (unless private targets are
/// allowed), so a name that changed to an internal address after
/// registration (DNS rebinding) is not reached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub allow_private: bool,
}

/// Why the resolver refused a name.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addresses
                .filter(|address| match forbidden_reason(address.ip()) {
                    Some(reason) if !allow_private => {
                        refused = Some(format!("{} ({reason})", address.ip()));
                        false
                    }
                    _ => true,
                })
                .collect();
            if allowed.is_empty() {
                let detail = refused.map_or_else(
                    || format!("host {host} has no address"),
                    |address| {
                        format!(
                            "host {host} resolves only to non-public addresses such as {address}"
                        )
                    },
                );
                return Err(Box::new(Refused(detail)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The client deliveries are sent with: no redirects (a 3xx is a failed
/// attempt), no proxy, the attempt timeout, and the guarded resolver.
pub(crate) fn http_client(options: &WebhooksOptions) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(options.request_timeout)
        .connect_timeout(options.request_timeout)
        .user_agent(USER_AGENT)
        .dns_resolver(GuardedResolver {
            allow_private: options.allow_private_targets,
        })
        .build()
}

/// A failed request in a few words, with its causes (reqwest's own message
/// hides them).
pub(crate) fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut text = if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_request() || error.is_body() {
        "request failed".to_owned()
    } else {
        "failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
        allow_http: false,
    };
    const LAX: TargetPolicy = TargetPolicy {
        allow_private: true,
        allow_http: true,
    };

    async fn refusal(url: &str, policy: TargetPolicy) -> String {
        let error = check_url(url, policy).await.unwrap_err();
        assert_eq!(error.field, "url");
        error.message
    }

    #[tokio::test]
    async fn loopback_private_and_metadata_addresses_are_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:192.168.0.1]/",
            "https://0x7f.1/",
            "https://localhost/hook",
        ] {
            let message = refusal(url, STRICT).await;
            assert!(
                message.contains("public addresses only"),
                "{url}: {message}"
            );
        }
    }

    #[tokio::test]
    async fn http_is_refused_unless_allowed() {
        assert_eq!(
            refusal("http://example.com/", STRICT).await,
            "must use https"
        );
        assert!(refusal("ftp://example.com/", LAX).await.contains("https"));
        assert_eq!(
            check_url("http://127.0.0.1:9/x#frag", LAX).await.unwrap(),
            "http://127.0.0.1:9/x"
        );
    }

    #[tokio::test]
    async fn malformed_urls_and_credentials_are_refused() {
        assert!(refusal("not a url", LAX).await.starts_with("is not a URL"));
        assert_eq!(
            refusal("https://user:pw@example.com/", LAX).await,
            "must not contain credentials"
        );
        assert!(
            refusal(&format!("https://example.com/{}", "a".repeat(2100)), LAX)
                .await
                .contains("at most")
        );
    }

    #[test]
    fn literal_hosts_are_checked_before_an_attempt() {
        let url = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert!(check_literal_host(&url, false).is_err());
        assert!(check_literal_host(&url, true).is_ok());
        let named = Url::parse("https://hooks.example.com/").unwrap();
        assert!(check_literal_host(&named, false).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_addresses() {
        let resolver = GuardedResolver {
            allow_private: false,
        };
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("non-public"), "{error}");
        let lax = GuardedResolver {
            allow_private: true,
        };
        let addresses: Vec<_> = lax
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
