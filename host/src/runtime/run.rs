//! Running one transcription: a fresh `Store` per job, armed with the memory limiter and
//! the epoch deadline callback, so cancellation and time limits never rely on the plugin.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::PluginPre;
use super::compute::{ComputeConfig, ComputeFault};
use super::contract::PluginFailure;
use super::host_audio::AudioResource;
use super::plugin::LoadedPlugin;
use super::store::{CancelFlag, JobContext};
use super::validate::{self, InvalidOutput};
use super::{Interrupt, JobLimits, JobReporter};
use crate::audio::Audio;
use crate::diarize::{SpeakerCount, SpeakerTurn, check_turns};
use crate::transcript::{Segment, Transcript};

/// What a job used, recorded for every finished job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ResourceUse {
    pub wall_ms: u64,
    /// Highest total linear memory of the job's store.
    pub peak_memory_bytes: u64,
    /// Bytes of live segment text accepted.
    pub output_bytes: u64,
    /// Bytes of log lines and stdout/stderr accepted.
    pub log_bytes: u64,
    /// Fuel the job burnt, instantiation included, when it ran metered; `None` when it
    /// did not. The same plugin, audio and configuration always burn the same amount.
    #[serde(default)]
    pub fuel_consumed: Option<u64>,
    /// Bytes of weights the plugin holds in the host's shared model memory (the same for
    /// every job of one plugin build; not part of `peak_memory_bytes`, which counts what is
    /// the job's own: linear memory and host tensors).
    #[serde(default)]
    pub shared_weights_bytes: u64,
    /// Microseconds to instantiate the component for this job from its `InstancePre`
    /// (part of `wall_ms`): small for a Rust plugin, and what a large component (a Python
    /// one holds a whole interpreter's heap) pays on every job.
    #[serde(default)]
    pub instantiate_us: u64,
}

/// The kind of error a plugin reported itself (the WIT `plugin-error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginErrorKind {
    BadConfig,
    UnsupportedAudio,
    Internal,
}

/// Why a run did not produce a transcript.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("the job was cancelled")]
    Cancelled,
    #[error("the job ran longer than its limit of {seconds} s and was stopped")]
    TimedOut { seconds: u64 },
    #[error("the job used all {fuel} units of fuel it may burn (fuel_per_job) and was stopped")]
    FuelExhausted { fuel: u64 },
    #[error("the plugin ran out of memory (limit {limit_mib} MiB)")]
    OutOfMemory { limit_mib: u64 },
    #[error("the plugin overflowed its stack")]
    StackOverflow,
    #[error("the plugin crashed: {0}")]
    Trap(String),
    #[error("{message}")]
    Plugin {
        kind: PluginErrorKind,
        message: String,
    },
    #[error("the plugin returned invalid output: {0}")]
    InvalidOutput(#[from] InvalidOutput),
    /// A call to the compute interface was wrong (shapes, handles, regions, sizes).
    #[error("the plugin made an invalid compute call: {0}")]
    InvalidComputeCall(String),
    /// Loading shared weights would pass the operator's `shared_model_bytes`.
    #[error("the plugin's weights do not fit in the server's shared model memory: {0}")]
    SharedModelMemory(String),
    #[error("the sandbox could not be set up: {0}")]
    Sandbox(String),
}

/// The result of a run (a transcript, or a diarizer's turns) plus what it used, whether
/// it succeeded or not.
pub struct RunOutcome<T = Transcript> {
    pub result: Result<T, RunError>,
    pub usage: ResourceUse,
}

/// What a run asks of the plugin.
pub(super) enum Call<'a> {
    Transcribe,
    /// Who spoke when in the audio of the finished `segments`.
    Diarize {
        segments: &'a [Segment],
        speakers: SpeakerCount,
    },
}

/// What a run's call gave back, checked.
pub(super) enum Output {
    Transcript(Transcript),
    Turns(Vec<SpeakerTurn>),
}

impl RunOutcome<Output> {
    /// The outcome with its output taken by `take` (`None`: the call gave the other kind,
    /// which the caller's choice of [`Call`] rules out; reported, never a panic).
    pub(super) fn map<T>(self, take: impl FnOnce(Output) -> Option<T>) -> RunOutcome<T> {
        RunOutcome {
            result: self.result.and_then(|output| {
                take(output).ok_or_else(|| {
                    RunError::Sandbox("the plugin's call returned the other world's output".into())
                })
            }),
            usage: self.usage,
        }
    }
}

/// Who a run reports to and what it may use besides its plugin's limits.
pub struct JobRun {
    pub reporter: Arc<dyn JobReporter>,
    pub cancel: CancelFlag,
    /// Fuel the store starts with; `None` for the plain engine.
    pub fuel: Option<u64>,
    /// The server's compute pool, for calls of jobs with more than one thread.
    pub pool: Option<Arc<rayon::ThreadPool>>,
}

/// Installs the memory limiter and the epoch deadline callback on a fresh store.
pub(super) fn arm_store(store: &mut Store<JobContext>) {
    store.limiter(|ctx| &mut ctx.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let data = ctx.data_mut();
        if data.cancel.is_cancelled() {
            data.interrupted = Some(Interrupt::Cancelled);
            return Err(wasmtime::Error::msg("job cancelled"));
        }
        if Instant::now() >= data.deadline {
            data.interrupted = Some(Interrupt::TimedOut);
            return Err(wasmtime::Error::msg("job time limit reached"));
        }
        Ok(UpdateDeadline::Continue(1))
    });
}

/// Turns a wasmtime error into the reason a person can act on.
fn classify(store: &Store<JobContext>, error: &wasmtime::Error, limits: &JobLimits) -> RunError {
    let data = store.data();
    match data.interrupted {
        Some(Interrupt::Cancelled) => return RunError::Cancelled,
        Some(Interrupt::TimedOut) => {
            return RunError::TimedOut {
                seconds: limits.time.as_secs(),
            };
        }
        None => {}
    }
    // A wrong compute call is the plugin's fault, whatever the trap looks like.
    match &data.compute.fault {
        Some(ComputeFault::Invalid(reason)) => return RunError::InvalidComputeCall(reason.clone()),
        Some(ComputeFault::SharedBudget(reason)) => {
            return RunError::SharedModelMemory(reason.clone());
        }
        Some(ComputeFault::OutOfMemory { .. }) | None => {}
    }
    // The canonical ABI refuses a handle the plugin does not own (never had, or gave
    // back) before the host sees the call: a wrong call all the same.
    if let Some(cause) = error
        .chain()
        .map(|cause| cause.to_string())
        .find(|cause| cause.contains("handle index"))
    {
        return RunError::InvalidComputeCall(format!(
            "the plugin used a handle it does not own ({cause})"
        ));
    }
    // Only a metered store can run dry; the trap says exactly that, whatever else the
    // plugin had been through (a refused memory growth it survived, say).
    if let Some(fuel) = limits.fuel
        && error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel)
    {
        return RunError::FuelExhausted { fuel };
    }
    if data.limiter.refused() {
        return RunError::OutOfMemory {
            limit_mib: data.limiter.limit_bytes() >> 20,
        };
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
        return RunError::StackOverflow;
    }
    // wasmtime caps the bytes copied across one call (its error type is private, so it
    // is recognised by its message): a plugin returning that much text is lying.
    if error
        .chain()
        .any(|cause| cause.to_string().contains("too much data is being copied"))
    {
        return RunError::InvalidOutput(InvalidOutput::TooMuchData);
    }
    RunError::Trap(describe_trap(store, error))
}

/// A one-line description of a trap: where the plugin panicked when it reported a panic
/// (the SDK's hook logs it; see `panic_report`), else its last output lines.
pub(super) fn describe_trap(store: &Store<JobContext>, error: &wasmtime::Error) -> String {
    let what = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    if let Some(panic) = store.data().log.panic_report() {
        return format!("{panic} ({what})");
    }
    match store.data().log.last_lines() {
        lines if lines.is_empty() => what,
        lines => format!("{what} (last output: {})", lines.join(" / ")),
    }
}

/// Runs `call` of `plugin` on audio already at the plugin's sample rate, from `pre`
/// (the plugin compiled for the plain or the metered engine). A metered store starts
/// with `fuel`; `None` for the plain engine.
pub(super) fn execute(
    pre: &PluginPre,
    plugin: &LoadedPlugin,
    audio: &Audio,
    config_json: &str,
    call: Call<'_>,
    job: JobRun,
) -> RunOutcome<Output> {
    let JobRun {
        reporter,
        cancel,
        fuel,
        pool,
    } = job;
    let started = Instant::now();
    let limits = JobLimits {
        fuel,
        ..JobLimits::from(&plugin.limits)
    };
    let mut usage = ResourceUse {
        fuel_consumed: fuel.map(|_| 0),
        ..ResourceUse::default()
    };
    if audio.sample_rate != plugin.meta.sample_rate {
        return RunOutcome {
            result: Err(RunError::Sandbox(format!(
                "audio is at {} Hz but the plugin wants {} Hz",
                audio.sample_rate, plugin.meta.sample_rate
            ))),
            usage,
        };
    }
    let context = match JobContext::new(plugin.assets.as_deref(), &limits, reporter, cancel) {
        Ok(mut context) => {
            context.audio_ms = audio.duration_ms();
            context.compute.config = ComputeConfig {
                threads: usize::try_from(plugin.limits.threads_per_job)
                    .unwrap_or(1)
                    .max(1),
                pool,
                weights: Some(plugin.weights.clone()),
                assets: plugin.assets.clone(),
            };
            context
        }
        Err(e) => {
            return RunOutcome {
                result: Err(RunError::Sandbox(e.to_string())),
                usage,
            };
        }
    };
    let mut store = Store::new(pre.engine(), context);
    arm_store(&mut store);
    if let Some(fuel) = fuel
        && let Err(e) = store.set_fuel(fuel)
    {
        return RunOutcome {
            result: Err(RunError::Sandbox(format!(
                "cannot give the job its fuel: {e}"
            ))),
            usage,
        };
    }
    let result = run_in_store(
        &mut store,
        pre,
        audio,
        config_json,
        call,
        &limits,
        &mut usage.instantiate_us,
    );
    // `get_fuel` only fails on an engine without fuel, where `fuel` is `None`.
    usage.fuel_consumed = fuel.and_then(|fuel| Some(fuel.saturating_sub(store.get_fuel().ok()?)));
    let data = store.data();
    usage.wall_ms = started.elapsed().as_millis() as u64;
    usage.peak_memory_bytes = data.limiter.peak_bytes();
    usage.shared_weights_bytes = plugin.weights.pinned_bytes();
    usage.output_bytes = data.output.used();
    usage.log_bytes = data.log.used();
    RunOutcome { result, usage }
}

fn run_in_store(
    store: &mut Store<JobContext>,
    pre: &PluginPre,
    audio: &Audio,
    config_json: &str,
    call: Call<'_>,
    limits: &JobLimits,
    instantiate_us: &mut u64,
) -> Result<Output, RunError> {
    let started = Instant::now();
    let instance = pre
        .instantiate(&mut *store)
        .map_err(|e| classify(store, &e, limits))?;
    *instantiate_us = started.elapsed().as_micros() as u64;
    let handle = store
        .data_mut()
        .table
        .push(AudioResource {
            samples: audio.samples.clone(),
            sample_rate: audio.sample_rate,
        })
        .map_err(|e| RunError::Sandbox(e.to_string()))?;
    let returned = match call {
        Call::Transcribe => instance
            .call_transcribe(&mut *store, handle, config_json)
            .map(|r| r.map(Output::Transcript)),
        Call::Diarize { segments, speakers } => instance
            .call_diarize(&mut *store, handle, segments, speakers, config_json)
            .map(|r| r.map(Output::Turns)),
    }
    .map_err(|e| classify(store, &e, limits))?;
    // A plugin that noticed the cancel hint and returned early still counts as cancelled.
    if store.data().cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    match returned {
        Ok(Output::Transcript(transcript)) => Ok(Output::Transcript(validate::transcript(
            transcript,
            audio.duration_ms(),
            limits.output_bytes,
        )?)),
        Ok(Output::Turns(turns)) => {
            check_turns(&turns, audio.duration_ms())
                .map_err(|reason| RunError::InvalidOutput(InvalidOutput::BadTurns(reason)))?;
            Ok(Output::Turns(turns))
        }
        Err(error) => Err(plugin_error(store, error, limits)),
    }
}

/// The run error for a `plugin-error` the plugin returned.
fn plugin_error(store: &Store<JobContext>, error: PluginFailure, limits: &JobLimits) -> RunError {
    let (kind, message) = match error {
        PluginFailure::BadConfig(m) => (PluginErrorKind::BadConfig, m),
        PluginFailure::UnsupportedAudio(m) => (PluginErrorKind::UnsupportedAudio, m),
        PluginFailure::Internal(m) => (PluginErrorKind::Internal, m),
        // The hint also turns true at the deadline: a plugin that stopped for it ran
        // out of time rather than being cancelled.
        PluginFailure::Cancelled if Instant::now() >= store.data().deadline => {
            return RunError::TimedOut {
                seconds: limits.time.as_secs(),
            };
        }
        PluginFailure::Cancelled => return RunError::Cancelled,
    };
    RunError::Plugin {
        kind,
        message: validate::truncate_chars(&message, 2000).to_owned(),
    }
}
