//! Leader election on a `coordination.k8s.io` Lease, so two operator
//! replicas are safe: only the holder reconciles; a holder that stops
//! renewing loses the lease once it expires.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::PostParams;

/// How long a lease lasts without renewal, by default.
pub const LEASE_SECONDS: i32 = 15;

/// One candidate for the lease.
#[derive(Debug, Clone)]
pub struct Elector {
    leases: Api<Lease>,
    name: String,
    identity: String,
    seconds: i32,
}

fn micro_now() -> MicroTime {
    let text = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    serde_json::from_value(serde_json::json!(text))
        .unwrap_or_else(|_| MicroTime(Default::default()))
}

fn seconds_since(t: &MicroTime) -> f64 {
    let text = serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    text.and_then(|s| humantime::parse_rfc3339_weak(&s).ok())
        .and_then(|then| std::time::SystemTime::now().duration_since(then).ok())
        .map_or(f64::MAX, |d| d.as_secs_f64())
}

impl Elector {
    /// A candidate named `identity` for the lease `name` in `namespace`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        seconds: i32,
    ) -> Self {
        Self {
            leases: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            seconds,
        }
    }

    /// How long the lease lasts without renewal.
    pub fn seconds(&self) -> i32 {
        self.seconds
    }

    /// Takes or renews the lease; returns whether this candidate holds it.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = micro_now();
        let Some(mut lease) = self.leases.get_opt(&self.name).await? else {
            let mut lease = Lease {
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
                ..Default::default()
            };
            lease.metadata.name = Some(self.name.clone());
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = f64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
        let expired = spec
            .renew_time
            .as_ref()
            .is_none_or(|t| seconds_since(t) > duration);
        if holder != self.identity && !expired {
            return Ok(false);
        }
        if holder != self.identity {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(self.seconds);
        spec.renew_time = Some(now);
        // The resource version makes this a compare-and-swap: of two
        // candidates replacing an expired lease, one wins.
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election failed; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
