//! The reconciler of `Trigger`: uploads the plugin's source (inline or from
//! a ConfigMap) through the plugin files API, then brings the server's
//! trigger to the spec (created when missing, replaced when its definition
//! differs, enabled or disabled as the spec says), and deletes it with the
//! resource. Drift (a trigger deleted or changed behind the operator's
//! back, a plugin file lost) is repaired at the next resync.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use sha2::Digest;

use crate::api::TriggerInfo;
use crate::crd::{ErrorBehavior, Trigger, TriggerStatus};
use crate::reconcile::{
    Context, Error, cluster_client, finalizer_error, merge, ready, write_status,
};

const TRIGGER_FINALIZER: &str = "inflow.dev/trigger";

/// The trigger's name on the server.
fn trigger_name(t: &Trigger) -> String {
    t.spec.name.clone().unwrap_or_else(|| t.name_any())
}

/// The server-side definition the spec asks for.
fn wanted(t: &Trigger) -> TriggerInfo {
    TriggerInfo {
        name: trigger_name(t),
        plugin_filename: t.spec.plugin.filename.clone(),
        specification: t.spec.specification.clone(),
        arguments: t.spec.arguments.clone(),
        disabled: t.spec.disabled,
        run_async: t.spec.run_async,
        error_behavior: match t.spec.error_behavior {
            ErrorBehavior::Log => "Log",
            ErrorBehavior::Retry => "Retry",
            ErrorBehavior::Disable => "Disable",
        }
        .to_string(),
        node_id: t.spec.node_id.clone(),
    }
}

/// The plugin's source from the spec, if it gives one.
async fn plugin_source(
    t: &Trigger,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let plugin = &t.spec.plugin;
    match (&plugin.source, &plugin.config_map_ref) {
        (Some(_), Some(_)) => Err(Error::Spec(
            "give the plugin's source inline or from a ConfigMap, not both".into(),
        )),
        (Some(source), None) => Ok(Some(source.clone())),
        (None, Some(r)) => {
            let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            let map = maps.get_opt(&r.name).await?.ok_or_else(|| {
                Error::Spec(format!(
                    "the ConfigMap {namespace}/{} does not exist",
                    r.name
                ))
            })?;
            map.data
                .and_then(|d| d.get(&r.key).cloned())
                .map(Some)
                .ok_or_else(|| {
                    Error::Spec(format!(
                        "the ConfigMap {namespace}/{} has no key '{}'",
                        r.name, r.key
                    ))
                })
        }
        (None, None) => Ok(None),
    }
}

fn hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reconciles one `Trigger`.
pub async fn reconcile_trigger(trigger: Arc<Trigger>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = trigger.namespace().unwrap_or_else(|| "default".to_string());
    let triggers: Api<Trigger> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&triggers, TRIGGER_FINALIZER, trigger, |event| async {
        match event {
            Event::Apply(t) => apply_trigger(&t, &ctx, &namespace).await,
            Event::Cleanup(t) => {
                let client = cluster_client(&ctx.client, &namespace, &t.spec.cluster_ref).await?;
                let name = trigger_name(&t);
                client.delete_trigger(&t.spec.database, &name).await?;
                ctx.event(&*t, false, "Deleted", format!("trigger {name} deleted"))
                    .await;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(finalizer_error);
    ctx.metrics
        .observe("Trigger", started.elapsed(), result.is_ok());
    result
}

async fn apply_trigger(t: &Trigger, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let want = wanted(t);
    let db = &t.spec.database;
    let mut uploaded = None;
    let mut halted = false;
    let outcome = async {
        let client = cluster_client(&ctx.client, namespace, &t.spec.cluster_ref).await?;
        let mut changes = Vec::new();
        if let Some(source) = plugin_source(t, ctx, namespace).await? {
            // Every reconcile: a pod that lost the file gets it back.
            client.upload_plugin(&want.plugin_filename, &source).await?;
            let h = hash(&source);
            let before = t.status.as_ref().and_then(|s| s.plugin_hash.as_deref());
            if before != Some(h.as_str()) {
                changes.push((
                    "PluginUploaded",
                    format!("plugin {} uploaded", want.plugin_filename),
                ));
            }
            uploaded = Some(h);
        }
        let existing = client.triggers(db).await?;
        match existing.iter().find(|e| e.name == want.name) {
            None => {
                client.create_trigger(db, &want).await?;
                changes.push(("Created", format!("trigger {} created in {db}", want.name)));
            }
            Some(have)
                if TriggerInfo {
                    disabled: want.disabled,
                    ..have.clone()
                } != want =>
            {
                client.delete_trigger(db, &want.name).await?;
                client.create_trigger(db, &want).await?;
                changes.push((
                    "Replaced",
                    format!("trigger {} replaced: its definition changed", want.name),
                ));
            }
            // error_behavior Disable turned it off after a failure: it stays
            // off until the spec is edited (a new generation).
            Some(have)
                if have.disabled
                    && !want.disabled
                    && t.spec.error_behavior == ErrorBehavior::Disable
                    && t.status.as_ref().and_then(|s| s.observed_generation)
                        == t.meta().generation =>
            {
                halted = true;
            }
            Some(have) if have.disabled != want.disabled => {
                client
                    .set_trigger_disabled(db, &want.name, want.disabled)
                    .await?;
                let state = if want.disabled { "disabled" } else { "enabled" };
                changes.push(("Toggled", format!("trigger {} {state}", want.name)));
            }
            Some(_) => {}
        }
        Ok::<_, Error>(changes)
    }
    .await;
    match &outcome {
        Err(e) => ctx.event(t, true, e.reason(), e.to_string()).await,
        Ok(changes) => {
            for (reason, note) in changes {
                ctx.event(t, false, reason, note.clone()).await;
            }
        }
    }
    let previous = t
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = t.meta().generation;
    let condition = match &outcome {
        Ok(_) if halted => ready(
            generation,
            false,
            "DisabledByPlugin",
            &format!(
                "trigger {} disabled itself after its plugin failed (error_behavior Disable); \
                 edit the spec to enable it again",
                want.name
            ),
        ),
        Ok(_) => ready(
            generation,
            true,
            "Reconciled",
            &format!("trigger {} is in place in {db}", want.name),
        ),
        Err(e) => ready(generation, false, e.reason(), &e.to_string()),
    };
    let status = TriggerStatus {
        trigger_name: Some(want.name.clone()),
        plugin_hash: uploaded.or_else(|| t.status.as_ref().and_then(|s| s.plugin_hash.clone())),
        observed_generation: generation,
        conditions: merge(&previous, condition),
    };
    write_status(ctx, namespace, t, &status).await?;
    outcome.map(|_| Action::requeue(ctx.resync))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{PluginSpec, TriggerSpec};

    fn trigger(spec: TriggerSpec) -> Trigger {
        let mut t = Trigger::new("downsample", spec);
        t.metadata.namespace = Some("default".into());
        t
    }

    #[test]
    fn the_spec_becomes_the_api_definition() {
        let t = trigger(TriggerSpec {
            cluster_ref: "prod".into(),
            database: "metrics".into(),
            name: None,
            specification: "every:1m".into(),
            plugin: PluginSpec {
                filename: "downsample.py".into(),
                source: Some("x = 1\n".into()),
                config_map_ref: None,
            },
            arguments: [("window".to_string(), "1h".to_string())].into(),
            disabled: true,
            run_async: false,
            error_behavior: ErrorBehavior::Retry,
            node_id: None,
        });
        let w = wanted(&t);
        assert_eq!(w.name, "downsample");
        assert_eq!(w.error_behavior, "Retry");
        assert_eq!(w.arguments["window"], "1h");
        assert!(w.disabled);
    }
}
