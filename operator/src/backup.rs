//! The reconcilers of `Backup` and `BackupSchedule`.
//!
//! ```text
//!  Backup ─▶ Job <backup>-backup: `inflow backup --to URL --summary-file /dev/termination-log`
//!            with the cluster's store (its INFLOW_* environment, the data claim for a file
//!            store) and the target's (INFLOW_BACKUP_AWS_*, the claim at /backups)
//!         ◀─ the Job's pod: Succeeded, its termination message the backup's summary
//!            (id, catalog sequence, bytes, files) ─▶ status; Failed ─▶ the log's tail
//!  BackupSchedule ─▶ at each cron time a Backup <schedule>-<YYYYMMDDHHMM> (owned by it);
//!                   finished ones past `keep` deleted, oldest first
//! ```
//!
//! A backup Job runs once (`restartPolicy: Never`, two retries): the backup
//! itself is consistent and resumable (files already in the target are not
//! copied again), so a retry is safe.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use crate::crd::{
    Backup, BackupSchedule, BackupScheduleStatus, BackupSpec, BackupStatus, BackupTarget,
    InflowCluster,
};
use crate::reconcile::{Context, Error, merge, now_rfc3339, ready, write_status};
use crate::workloads;

/// The label a scheduled backup carries: its schedule's name.
pub const SCHEDULE_LABEL: &str = "inflow.dev/backup-schedule";

/// How often a running backup's Job is looked at.
const POLL: Duration = Duration::from_secs(5);

fn owner<K: Resource<DynamicType = ()>>(object: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: object.meta().name.clone().unwrap_or_default(),
        uid: object.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The Job's name for a backup.
pub fn job_name(backup: &Backup) -> String {
    let mut name = format!("{}-backup", backup.name_any());
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// The Job that makes `backup` of `cluster`.
pub fn backup_job(cluster: &InflowCluster, backup: &Backup) -> Job {
    let target = &backup.spec.target;
    inflow_job(
        cluster,
        target,
        job_name(backup),
        backup.namespace(),
        owner(backup),
        ("inflow.dev/backup", backup.name_any()),
        vec![
            "backup".to_string(),
            format!("--to={}", target.url),
            "--summary-file=/dev/termination-log".to_string(),
            "--log-format=json".to_string(),
        ],
    )
}

/// The Job that restores `cluster`'s store from its `restoreFrom`.
pub fn restore_job(cluster: &InflowCluster, from: &crate::crd::RestoreSpec) -> Job {
    let mut args = vec![
        "restore".to_string(),
        format!("--from={}", from.target.url),
        "--summary-file=/dev/termination-log".to_string(),
        "--log-format=json".to_string(),
    ];
    if let Some(id) = &from.backup_id {
        args.push(format!("--backup-id={id}"));
    }
    inflow_job(
        cluster,
        &from.target,
        restore_job_name(cluster),
        cluster.namespace(),
        owner(cluster),
        ("inflow.dev/restore", cluster.name_any()),
        args,
    )
}

/// The restore Job's name for a cluster.
pub fn restore_job_name(cluster: &InflowCluster) -> String {
    let mut name = format!("{}-restore", cluster.name_any());
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// A Job running `inflow ARGS` once, with `cluster`'s store and `target`'s
/// credentials and claim.
fn inflow_job(
    cluster: &InflowCluster,
    target: &BackupTarget,
    name: String,
    namespace: Option<String>,
    owner: OwnerReference,
    label: (&str, String),
    args: Vec<String>,
) -> Job {
    let component = if args.first().is_some_and(|a| a == "restore") {
        "restore"
    } else {
        "backup"
    };
    let mut env = workloads::store_env(cluster);
    env.extend(target_env(target));
    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts: Vec<VolumeMount> = Vec::new();
    if let Some((v, m)) = workloads::data_volume(cluster) {
        volumes.push(v);
        mounts.push(m);
    }
    if let Some(claim) = &target.claim_name {
        volumes.push(Volume {
            name: "backups".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: None,
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: "backups".to_string(),
            mount_path: "/backups".to_string(),
            ..Default::default()
        });
    }
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "inflow".to_string()),
        ("app.kubernetes.io/instance".to_string(), cluster.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "inflow-operator".to_string(),
        ),
        (label.0.to_string(), label.1),
    ]);
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace,
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    containers: vec![Container {
                        name: component.to_string(),
                        image: Some(workloads::image(cluster)),
                        command: Some(vec!["inflow".to_string()]),
                        args: Some(args),
                        env: Some(env),
                        volume_mounts: Some(mounts),
                        // A failure's message is the end of its log.
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The `INFLOW_BACKUP_AWS_*` environment of a target.
fn target_env(target: &BackupTarget) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let mut env = Vec::new();
    if let Some(e) = &target.endpoint {
        env.push(workloads::env("INFLOW_BACKUP_AWS_ENDPOINT", e));
    }
    if let Some(r) = &target.region {
        env.push(workloads::env("INFLOW_BACKUP_AWS_REGION", r));
    }
    if let Some(s) = &target.credentials_secret_name {
        env.push(workloads::secret_env(
            "INFLOW_BACKUP_AWS_ACCESS_KEY_ID",
            s,
            "AWS_ACCESS_KEY_ID",
        ));
        env.push(workloads::secret_env(
            "INFLOW_BACKUP_AWS_SECRET_ACCESS_KEY",
            s,
            "AWS_SECRET_ACCESS_KEY",
        ));
    }
    env
}

/// What `inflow backup --summary-file` writes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    backup_id: String,
    catalog_seq: u64,
    parquet_files: u64,
    wal_files: u64,
    total_bytes: u64,
    copied_bytes: u64,
    duration_ms: u64,
}

fn finished(status: &Option<BackupStatus>) -> bool {
    status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed")
}

/// Brings a `Backup` forward: its Job made, then its outcome in status.
/// A finished backup is left as it is.
pub async fn reconcile_backup(backup: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = backup.namespace().unwrap_or_else(|| "default".to_string());
    if finished(&backup.status) {
        return Ok(Action::await_change());
    }
    let previous = backup.status.clone().unwrap_or_default();
    let generation = backup.metadata.generation;
    let report =
        async |status: BackupStatus| write_status(&ctx, &namespace, &*backup, &status).await;
    let clusters: Api<InflowCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(cluster) = clusters.get_opt(&backup.spec.cluster_ref).await? else {
        let message = format!(
            "InflowCluster {namespace}/{} not found",
            backup.spec.cluster_ref
        );
        report(BackupStatus {
            phase: Some("Pending".into()),
            conditions: merge(
                &previous.conditions,
                ready(generation, false, "ClusterNotFound", &message),
            ),
            ..previous.clone()
        })
        .await?;
        return Ok(Action::requeue(Duration::from_secs(10)));
    };
    if cluster.spec.external.is_some() {
        let message = "an external cluster's object store is not the operator's: back it up with `inflow backup` where it runs";
        report(BackupStatus {
            phase: Some("Failed".into()),
            conditions: merge(
                &previous.conditions,
                ready(generation, false, "ExternalCluster", message),
            ),
            ..previous.clone()
        })
        .await?;
        return Ok(Action::await_change());
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = job_name(&backup);
    let job = match jobs.get_opt(&name).await? {
        Some(j) => j,
        None => {
            let job = backup_job(&cluster, &backup);
            match jobs.create(&PostParams::default(), &job).await {
                Ok(j) => j,
                Err(kube::Error::Api(e)) if e.code == 409 => jobs.get(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let outcome = job_outcome(&ctx, &namespace, &job).await?;
    if let JobOutcome::Succeeded(message) = &outcome {
        let message = message.clone();
        let summary = message
            .as_deref()
            .and_then(|m| serde_json::from_str::<Summary>(m.trim()).ok());
        let next = match summary {
            Some(s) => BackupStatus {
                phase: Some("Succeeded".into()),
                job_name: Some(name.clone()),
                backup_id: Some(s.backup_id.clone()),
                catalog_seq: Some(s.catalog_seq),
                total_bytes: Some(s.total_bytes),
                copied_bytes: Some(s.copied_bytes),
                files: Some(s.parquet_files),
                wal_files: Some(s.wal_files),
                duration_ms: Some(s.duration_ms),
                completion_time: Some(now_rfc3339()),
                conditions: merge(
                    &previous.conditions,
                    ready(
                        generation,
                        true,
                        "Succeeded",
                        &format!(
                            "backup {} of catalog sequence {}",
                            s.backup_id, s.catalog_seq
                        ),
                    ),
                ),
            },
            None => BackupStatus {
                phase: Some("Failed".into()),
                job_name: Some(name.clone()),
                completion_time: Some(now_rfc3339()),
                conditions: merge(
                    &previous.conditions,
                    ready(
                        generation,
                        false,
                        "NoSummary",
                        &format!(
                            "the Job succeeded but its pod left no backup summary: {}",
                            message.unwrap_or_default()
                        ),
                    ),
                ),
                ..previous.clone()
            },
        };
        ctx.event(
            &*backup,
            next.phase.as_deref() != Some("Succeeded"),
            if next.phase.as_deref() == Some("Succeeded") {
                "BackupSucceeded"
            } else {
                "BackupFailed"
            },
            next.conditions
                .first()
                .map(|c| c.message.clone())
                .unwrap_or_default(),
        )
        .await;
        report(next).await?;
        return Ok(Action::await_change());
    }
    if let JobOutcome::Failed(message) = &outcome {
        let message = message.clone();
        ctx.event(&*backup, true, "BackupFailed", message.clone())
            .await;
        report(BackupStatus {
            phase: Some("Failed".into()),
            job_name: Some(name.clone()),
            completion_time: Some(now_rfc3339()),
            conditions: merge(
                &previous.conditions,
                ready(generation, false, "JobFailed", &message),
            ),
            ..previous.clone()
        })
        .await?;
        return Ok(Action::await_change());
    }
    let phase = match outcome {
        JobOutcome::Running(true) => "Running",
        _ => "Pending",
    };
    if previous.phase.as_deref() != Some(phase) || previous.job_name.as_deref() != Some(&name) {
        report(BackupStatus {
            phase: Some(phase.into()),
            job_name: Some(name.clone()),
            conditions: merge(
                &previous.conditions,
                ready(generation, false, phase, "the backup Job is running"),
            ),
            ..previous.clone()
        })
        .await?;
    }
    Ok(Action::requeue(POLL))
}

/// Where a Job stands.
enum JobOutcome {
    /// Not finished (`true`: a pod is active).
    Running(bool),
    /// Done: its pod's termination message.
    Succeeded(Option<String>),
    /// Out of retries: the end of the last pod's log.
    Failed(String),
}

async fn job_outcome(ctx: &Context, namespace: &str, job: &Job) -> Result<JobOutcome, Error> {
    let name = job.name_any();
    let status = job.status.clone().unwrap_or_default();
    let failed = status
        .conditions
        .iter()
        .flatten()
        .any(|c| (c.type_ == "Failed" || c.type_ == "FailureTarget") && c.status == "True");
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let termination = async |phase: &str| -> Result<Option<String>, Error> {
        let listed = pods
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await?;
        let mut found: Option<(String, String)> = None;
        for p in listed.items {
            let Some(st) = p.status else { continue };
            if st.phase.as_deref() != Some(phase) {
                continue;
            }
            let message = st
                .container_statuses
                .into_iter()
                .flatten()
                .filter_map(|c| c.state.and_then(|s| s.terminated))
                .find_map(|t| t.message.map(|m| (t.finished_at, m)));
            if let Some((at, m)) = message {
                let at = at.map(|t| t.0.to_string()).unwrap_or_default();
                if found.as_ref().is_none_or(|(prev, _)| at >= *prev) {
                    found = Some((at, m));
                }
            }
        }
        Ok(found.map(|(_, m)| m))
    };
    if status.succeeded.unwrap_or(0) >= 1 {
        return Ok(JobOutcome::Succeeded(termination("Succeeded").await?));
    }
    if failed {
        let message = termination("Failed")
            .await?
            .map(|m| {
                let lines: Vec<&str> = m.lines().collect();
                lines[lines.len().saturating_sub(5)..].join("\n")
            })
            .unwrap_or_else(|| format!("the Job {name} failed"));
        return Ok(JobOutcome::Failed(message));
    }
    Ok(JobOutcome::Running(status.active.unwrap_or(0) > 0))
}

/// What `inflow restore --summary-file` writes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestoreSummary {
    backup_id: String,
    catalog_seq: u64,
    files: u64,
    bytes: u64,
}

/// The bootstrap of a cluster with `restoreFrom`: its restore Job made and
/// followed. `phase: Succeeded` once done (then never again: the status
/// keeps it); the workloads wait until then.
pub async fn restore_step(
    cluster: &InflowCluster,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<crate::crd::RestoreStatus>, Error> {
    use crate::crd::RestoreStatus;
    let Some(from) = &cluster.spec.restore_from else {
        return Ok(cluster.status.as_ref().and_then(|s| s.restore.clone()));
    };
    let previous = cluster.status.as_ref().and_then(|s| s.restore.clone());
    if previous.as_ref().is_some_and(|r| r.phase == "Succeeded") {
        return Ok(previous);
    }
    // A file store's claim first: the Job mounts it.
    if let Some(pvc) = workloads::data_claim(cluster) {
        let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), namespace);
        if claims.get_opt(&pvc.name_any()).await?.is_none() {
            claims.create(&PostParams::default(), &pvc).await?;
        }
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let name = restore_job_name(cluster);
    let job = match jobs.get_opt(&name).await? {
        Some(j) => j,
        None => match jobs
            .create(&PostParams::default(), &restore_job(cluster, from))
            .await
        {
            Ok(j) => j,
            Err(kube::Error::Api(e)) if e.code == 409 => jobs.get(&name).await?,
            Err(e) => return Err(e.into()),
        },
    };
    Ok(Some(match job_outcome(ctx, namespace, &job).await? {
        JobOutcome::Running(active) => RestoreStatus {
            phase: if active { "Running" } else { "Pending" }.into(),
            job_name: Some(name),
            ..Default::default()
        },
        JobOutcome::Succeeded(message) => {
            match message
                .as_deref()
                .and_then(|m| serde_json::from_str::<RestoreSummary>(m.trim()).ok())
            {
                Some(s) => RestoreStatus {
                    phase: "Succeeded".into(),
                    job_name: Some(name),
                    backup_id: Some(s.backup_id),
                    catalog_seq: Some(s.catalog_seq),
                    files: Some(s.files),
                    bytes: Some(s.bytes),
                    message: None,
                },
                None => RestoreStatus {
                    phase: "Failed".into(),
                    job_name: Some(name),
                    message: Some(format!(
                        "the restore Job succeeded but left no summary: {}",
                        message.unwrap_or_default()
                    )),
                    ..Default::default()
                },
            }
        }
        JobOutcome::Failed(message) => RestoreStatus {
            phase: "Failed".into(),
            job_name: Some(name),
            message: Some(message),
            ..Default::default()
        },
    }))
}

/// A CronJob-style schedule (`MIN HOUR DOM MON DOW`, UTC).
fn parse_schedule(text: &str) -> Result<cron::Schedule, Error> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(Error::Spec(format!(
            "schedule '{text}' has {fields} fields; give five, as a CronJob's: MIN HOUR DOM MON DOW"
        )));
    }
    cron::Schedule::from_str(&format!("0 {text}"))
        .map_err(|e| Error::Spec(format!("schedule '{text}': {e}")))
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Makes a `Backup` at each of the schedule's times and keeps the newest
/// `keep` finished ones.
pub async fn reconcile_schedule(
    schedule: Arc<BackupSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = schedule
        .namespace()
        .unwrap_or_else(|| "default".to_string());
    let previous = schedule.status.clone().unwrap_or_default();
    let generation = schedule.metadata.generation;
    let cron = match parse_schedule(&schedule.spec.schedule) {
        Ok(c) => c,
        Err(e) => {
            write_status(
                &ctx,
                &namespace,
                &*schedule,
                &BackupScheduleStatus {
                    conditions: merge(
                        &previous.conditions,
                        ready(generation, false, e.reason(), &e.to_string()),
                    ),
                    ..previous.clone()
                },
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let now = chrono::Utc::now();
    let since = previous
        .last_schedule_time
        .as_deref()
        .and_then(parse_time)
        .or_else(|| {
            schedule
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| parse_time(&t.0.to_string()))
        })
        .unwrap_or(now);
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut status = previous.clone();
    // The latest time due (missed runs are not made up one by one). While
    // suspended, as a CronJob, nothing moves: times missed then count as
    // missed, and a resume runs the latest of them at once.
    let due = cron.after(&since).take_while(|t| *t <= now).last();
    if let Some(at) = due
        && !schedule.spec.suspend
    {
        let name = format!("{}-{}", schedule.name_any(), at.format("%Y%m%d%H%M"));
        let backup = Backup {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(BTreeMap::from([(
                    SCHEDULE_LABEL.to_string(),
                    schedule.name_any(),
                )])),
                owner_references: Some(vec![owner(&*schedule)]),
                ..Default::default()
            },
            spec: BackupSpec {
                cluster_ref: schedule.spec.cluster_ref.clone(),
                target: schedule.spec.target.clone(),
            },
            status: None,
        };
        match backups.create(&PostParams::default(), &backup).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        status.last_schedule_time = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        status.last_backup = Some(name);
    }
    // Retention: the newest `keep` finished backups of this schedule stay.
    let mine = backups
        .list(&ListParams::default().labels(&format!("{SCHEDULE_LABEL}={}", schedule.name_any())))
        .await?;
    let mut done: Vec<&Backup> = mine.items.iter().filter(|b| finished(&b.status)).collect();
    done.sort_by_key(|b| {
        (
            b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            b.name_any(),
        )
    });
    let keep = schedule.spec.keep.max(1) as usize;
    if done.len() > keep {
        for old in &done[..done.len() - keep] {
            match backups
                .delete(&old.name_any(), &DeleteParams::background())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let next = cron.after(&now).next();
    status.next_schedule_time = next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    status.conditions = merge(
        &previous.conditions,
        ready(
            generation,
            true,
            if schedule.spec.suspend {
                "Suspended"
            } else {
                "Scheduled"
            },
            &match &status.next_schedule_time {
                Some(t) if !schedule.spec.suspend => format!("next backup at {t}"),
                _ => "suspended".to_string(),
            },
        ),
    );
    if status != previous {
        write_status(&ctx, &namespace, &*schedule, &status).await?;
    }
    // Back at the next time (or to apply retention as backups finish).
    let wait = next
        .and_then(|t| (t - now).to_std().ok())
        .unwrap_or(ctx.resync)
        .min(ctx.resync)
        .max(Duration::from_secs(1));
    Ok(Action::requeue(wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{InflowClusterSpec, ObjectStoreSpec, S3Store};

    fn cluster(store: Option<ObjectStoreSpec>) -> InflowCluster {
        let mut c = InflowCluster::new(
            "prod",
            InflowClusterSpec {
                image: Some("inflow:test".into()),
                object_store: store,
                ..serde_json::from_value(serde_json::json!({})).unwrap()
            },
        );
        c.metadata.namespace = Some("ns".into());
        c
    }

    fn backup(target: BackupTarget) -> Backup {
        let mut b = Backup::new(
            "nightly",
            BackupSpec {
                cluster_ref: "prod".into(),
                target,
            },
        );
        b.metadata.namespace = Some("ns".into());
        b.metadata.uid = Some("uid-1".into());
        b
    }

    fn env_of(job: &Job) -> BTreeMap<String, String> {
        let c = &job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        c.env
            .iter()
            .flatten()
            .map(|e| {
                let v = e.value.clone().unwrap_or_else(|| {
                    let r = e
                        .value_from
                        .as_ref()
                        .unwrap()
                        .secret_key_ref
                        .as_ref()
                        .unwrap();
                    format!("secret:{}/{}", r.name, r.key)
                });
                (e.name.clone(), v)
            })
            .collect()
    }

    #[test]
    fn the_job_reads_the_cluster_store_and_writes_the_target() {
        let c = cluster(Some(ObjectStoreSpec::S3(S3Store {
            bucket: "data".into(),
            endpoint: Some("http://minio:9000".into()),
            region: None,
            credentials_secret_name: Some("data-keys".into()),
        })));
        let b = backup(BackupTarget {
            url: "s3://backups/prod".into(),
            endpoint: Some("https://s3.example".into()),
            region: Some("eu-west-1".into()),
            credentials_secret_name: Some("backup-keys".into()),
            claim_name: None,
        });
        let job = backup_job(&c, &b);
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-backup"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Backup", "uid-1")
        );
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_ref().unwrap()[..3],
            [
                "backup".to_string(),
                "--to=s3://backups/prod".to_string(),
                "--summary-file=/dev/termination-log".to_string()
            ]
        );
        let env = env_of(&job);
        assert_eq!(env["INFLOW_BUCKET"], "data");
        assert_eq!(
            env["INFLOW_AWS_ACCESS_KEY_ID"],
            "secret:data-keys/AWS_ACCESS_KEY_ID"
        );
        assert_eq!(env["INFLOW_BACKUP_AWS_ENDPOINT"], "https://s3.example");
        assert_eq!(env["INFLOW_BACKUP_AWS_REGION"], "eu-west-1");
        assert_eq!(
            env["INFLOW_BACKUP_AWS_SECRET_ACCESS_KEY"],
            "secret:backup-keys/AWS_SECRET_ACCESS_KEY"
        );
        assert!(
            pod.volumes.iter().flatten().next().is_none(),
            "no volume on S3"
        );
    }

    #[test]
    fn a_file_store_and_a_claim_target_are_mounted() {
        let b = backup(BackupTarget {
            url: "file:///backups/prod".into(),
            endpoint: None,
            region: None,
            credentials_secret_name: None,
            claim_name: Some("backup-disk".into()),
        });
        let job = backup_job(&cluster(None), &b);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let claims: Vec<String> = pod
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.clone())
            })
            .collect();
        assert_eq!(claims, ["prod-data", "backup-disk"]);
        let mounts: Vec<&str> = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, [workloads::DATA_MOUNT, "/backups"]);
    }

    #[test]
    fn schedules_are_cronjob_style() {
        let s = parse_schedule("30 3 * * *").unwrap();
        let after = chrono::DateTime::parse_from_rfc3339("2026-01-01T04:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            s.after(&after).next().unwrap().to_rfc3339(),
            "2026-01-02T03:30:00+00:00"
        );
        assert!(parse_schedule("0 30 3 * * *").is_err(), "six fields");
        assert!(parse_schedule("61 * * * *").is_err());
    }
}
