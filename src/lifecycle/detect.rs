//! The detection algorithm (spec "Phase #1" and the reference lifecycle's order walk): expand
//! orders and composites, run each `bin/detect` at most once, resolve the build plan.
//! Pure: buildpack lookup and running `bin/detect` come in through traits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::buildpack_toml::{BuildpackDescriptor, LookupError};
use super::exitcode::{DETECT_FAIL, DETECT_PASS};
use super::order::{GroupEntry, OrderEntry};
use super::plan::{Contribution, Plan, PlanEntry, PlanSection, Provider, Require};
use super::target::{any_satisfied, RunTarget};

/// Finds `<buildpacks>/<id>/<version>`; an error aborts detection (exit 22).
pub trait BuildpackStore {
    fn lookup(&mut self, id: &str, version: &str) -> Result<Arc<BuildpackDescriptor>, LookupError>;
}

/// Runs `bin/detect` for each buildpack (concurrently if it likes), results in input order.
pub trait DetectRunner {
    fn run(&self, bps: &[Arc<BuildpackDescriptor>]) -> Vec<DetectRun>;
}

/// One `bin/detect` result. `code` is the exit code, or -1 when the lifecycle itself failed
/// the buildpack (could not start it, invalid plan, target mismatch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectRun {
    pub code: i32,
    pub output: String,
    pub plan: Contribution,
    pub error: Option<String>,
}

impl DetectRun {
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            code: -1,
            error: Some(msg.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone)]
struct Done {
    bp: Arc<BuildpackDescriptor>,
    optional: bool,
}

/// The winning group and its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub group: Vec<GroupEntry>,
    pub plan: Plan,
    /// How many buildpacks were considered in the winning group (for the log line).
    pub considered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// No group passed; `errored` if a buildpack errored (exit 21, else 20).
    #[error("no buildpack groups passed detection")]
    NoGroupPassed { errored: bool },
    #[error(transparent)]
    Lookup(LookupError),
}

enum Outcome {
    Pass(Detected),
    Fail { errored: bool },
}

pub struct Detector<'a, S, R> {
    store: &'a mut S,
    runner: &'a R,
    /// `None` skips target checks (Platform API < 0.12).
    run_target: Option<RunTarget>,
    runs: HashMap<String, DetectRun>,
    /// What each tried group said, for the failure output and debug logs.
    pub report: Vec<String>,
}

impl<'a, S: BuildpackStore, R: DetectRunner> Detector<'a, S, R> {
    pub fn new(store: &'a mut S, runner: &'a R, run_target: Option<RunTarget>) -> Self {
        Self {
            store,
            runner,
            run_target,
            runs: HashMap::new(),
            report: Vec::new(),
        }
    }

    /// Runs detection over `order`; the first group that resolves wins.
    pub fn detect(&mut self, order: &[Vec<OrderEntry>]) -> Result<Detected, DetectError> {
        match self.detect_order(order, &[], &[], false)? {
            Outcome::Pass(d) => Ok(d),
            Outcome::Fail { errored } => Err(DetectError::NoGroupPassed { errored }),
        }
    }

    /// How many `bin/detect` processes ran (each buildpack at most once).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn detect_order(
        &mut self,
        order: &[Vec<OrderEntry>],
        done: &[Done],
        next: &[OrderEntry],
        optional: bool,
    ) -> Result<Outcome, DetectError> {
        let mut errored = false;
        for group in order {
            let combined: Vec<OrderEntry> = group.iter().chain(next).cloned().collect();
            match self.detect_group(&combined, done.to_vec())? {
                Outcome::Pass(d) => return Ok(Outcome::Pass(d)),
                Outcome::Fail { errored: e } => errored |= e,
            }
        }
        // An optional composite whose groups all failed contributes nothing: retry without it.
        if optional {
            return self.detect_group(next, done.to_vec());
        }
        Ok(Outcome::Fail { errored })
    }

    fn detect_group(
        &mut self,
        group: &[OrderEntry],
        mut done: Vec<Done>,
    ) -> Result<Outcome, DetectError> {
        for (i, el) in group.iter().enumerate() {
            // The first occurrence of an id wins, whatever its version.
            if done.iter().any(|d| d.bp.id == el.id) {
                continue;
            }
            let bp = self
                .store
                .lookup(&el.id, &el.version)
                .map_err(DetectError::Lookup)?;
            if bp.is_composite() {
                let order = bp.order.clone();
                return self.detect_order(&order, &done, &group[i + 1..], el.optional);
            }
            if let Some(t) = &self.run_target {
                if !any_satisfied(&bp.targets, t) {
                    if el.optional {
                        continue;
                    }
                    self.runs.entry(bp.key()).or_insert_with(|| {
                        DetectRun::error("unable to satisfy target os/arch constraints")
                    });
                }
            }
            done.push(Done {
                bp,
                optional: el.optional,
            });
        }
        self.run_pending(&done);
        Ok(self.resolve(&done))
    }

    fn run_pending(&mut self, done: &[Done]) {
        let pending: Vec<Arc<BuildpackDescriptor>> = done
            .iter()
            .filter(|d| !self.runs.contains_key(&d.bp.key()))
            .map(|d| d.bp.clone())
            .collect();
        if pending.is_empty() {
            return;
        }
        let results = self.runner.run(&pending);
        for (bp, run) in pending.iter().zip(results) {
            self.runs.insert(bp.key(), run);
        }
    }

    fn resolve(&mut self, done: &[Done]) -> Outcome {
        let mut passing = Vec::new();
        let mut errored = false;
        let mut detected = true;
        let mut results = Vec::new();
        for d in done {
            let key = d.bp.key();
            let run = &self.runs[&key];
            self.report.push(format!("======== Output: {key} ========"));
            if !run.output.is_empty() {
                self.report.push(run.output.trim_end().to_string());
            }
            match run.code {
                DETECT_PASS => results.push(format!("pass: {key}")),
                DETECT_FAIL if d.optional => results.push(format!("skip: {key}")),
                DETECT_FAIL => results.push(format!("fail: {key}")),
                code => {
                    errored = true;
                    let why = run
                        .error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    results.push(format!("err:  {key} ({code}){why}"));
                }
            }
            if run.code == DETECT_PASS {
                passing.push((d.clone(), run.plan.clone()));
            } else if !d.optional {
                detected = false;
            }
        }
        self.report.push("======== Results ========".into());
        self.report.extend(results);
        if !detected {
            return Outcome::Fail { errored };
        }
        if passing.is_empty() {
            return Outcome::Fail { errored: false };
        }
        match resolve_plan(&passing) {
            Ok((trial, deps)) => Outcome::Pass(Detected {
                group: trial
                    .iter()
                    .map(|&i| {
                        let bp = &passing[i].0.bp;
                        GroupEntry {
                            id: bp.id.clone(),
                            version: bp.version.clone(),
                            api: bp.api_str.clone(),
                            homepage: bp.homepage.clone(),
                        }
                    })
                    .collect(),
                plan: plan_from(&deps, &passing),
                considered: done.len(),
            }),
            Err(why) => {
                self.report.push(format!("Resolving plan... {why}"));
                Outcome::Fail { errored: false }
            }
        }
    }
}

/// One option of one passing buildpack in a trial.
#[derive(Clone, Copy)]
struct Opt<'a> {
    idx: usize,
    section: &'a PlanSection,
    optional: bool,
}

#[derive(Default)]
struct DepEntry {
    providers: Vec<usize>,
    requires: Vec<Require>,
    extra_provides: Vec<usize>,
    early_requires: Vec<usize>,
}

type DepMap = BTreeMap<String, DepEntry>;

/// Tries the cartesian product of options (first buildpack outermost); the first trial that
/// holds wins. Returns surviving element indices and the dependency map.
fn resolve_plan(passing: &[(Done, Contribution)]) -> Result<(Vec<usize>, DepMap), String> {
    let options: Vec<Vec<Opt<'_>>> = passing
        .iter()
        .enumerate()
        .map(|(idx, (d, c))| {
            let opts = c.options();
            let last = opts.len() - 1;
            opts.into_iter()
                .enumerate()
                // An optional buildpack is optional only in its last alternative.
                .map(|(i, section)| Opt {
                    idx,
                    section,
                    optional: d.optional && i == last,
                })
                .collect()
        })
        .collect();
    let mut last_err = String::from("no trial");
    let mut trial = Vec::with_capacity(options.len());
    if let Some(found) = product(&options, &mut trial, &mut |t| match run_trial(t, passing) {
        Ok(ok) => Some(ok),
        Err(e) => {
            last_err = e;
            None
        }
    }) {
        return Ok(found);
    }
    Err(last_err)
}

fn product<'a, T>(
    options: &[Vec<Opt<'a>>],
    trial: &mut Vec<Opt<'a>>,
    f: &mut impl FnMut(Vec<Opt<'a>>) -> Option<T>,
) -> Option<T> {
    let Some((first, rest)) = options.split_first() else {
        return f(trial.clone());
    };
    for o in first {
        trial.push(*o);
        let r = product(rest, trial, f);
        trial.pop();
        if r.is_some() {
            return r;
        }
    }
    None
}

fn dep_map(trial: &[Opt<'_>]) -> DepMap {
    let mut m = DepMap::new();
    for o in trial {
        // Provides first, so a buildpack can satisfy its own requirement.
        for p in &o.section.provides {
            m.entry(p.clone()).or_default().extra_provides.push(o.idx);
        }
        for r in &o.section.requires {
            let e = m.entry(r.name.clone()).or_default();
            let extra = std::mem::take(&mut e.extra_provides);
            e.providers.extend(extra);
            if e.providers.is_empty() {
                e.early_requires.push(o.idx);
            } else {
                e.requires.push(r.clone());
            }
        }
    }
    m
}

fn run_trial(
    mut trial: Vec<Opt<'_>>,
    passing: &[(Done, Contribution)],
) -> Result<(Vec<usize>, DepMap), String> {
    loop {
        let deps = dep_map(&trial);
        let mut remove = Vec::new();
        for (name, e) in &deps {
            let unmet = e
                .early_requires
                .iter()
                .map(|&i| (i, "requires"))
                .chain(e.extra_provides.iter().map(|&i| (i, "provides unused")));
            for (i, what) in unmet {
                let opt = trial.iter().find(|o| o.idx == i);
                if !opt.is_some_and(|o| o.optional) {
                    return Err(format!("fail: {} {what} {name}", passing[i].0.bp.key()));
                }
                remove.push(i);
            }
        }
        if remove.is_empty() {
            if trial.is_empty() {
                return Err("fail: no buildpacks in trial".into());
            }
            return Ok((trial.iter().map(|o| o.idx).collect(), deps));
        }
        trial.retain(|o| !remove.contains(&o.idx));
    }
}

/// Plan entries sorted by dependency name (the reference lifecycle's order is random).
fn plan_from(deps: &DepMap, passing: &[(Done, Contribution)]) -> Plan {
    Plan {
        entries: deps
            .values()
            .filter(|e| !e.requires.is_empty())
            .map(|e| PlanEntry {
                providers: e
                    .providers
                    .iter()
                    .map(|&i| Provider {
                        id: passing[i].0.bp.id.clone(),
                        version: passing[i].0.bp.version.clone(),
                    })
                    .collect(),
                requires: e.requires.clone(),
            })
            .collect(),
    }
}
