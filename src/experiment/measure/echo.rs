//! Echo points: our server under the load generator, one subject per point, all
//! points' runs interleaved by `bench::run_many`.

use super::{row, summarise};
use crate::backend::Backend;
use crate::bench::{self, BenchPlan, FIGURES, Step, Subject, Warning};
use crate::experiment::{Experiment, Row, Setting};
use crate::load::{self, LoadConfig};
use crate::server;

pub fn measure(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    let mut rows: Vec<Row> = exp.points.iter().map(|p| row(p)).collect();
    let mut plans = Vec::new();
    let mut measured_rows = Vec::new();
    for (i, point) in exp.points.iter().enumerate() {
        match plan(point, exp.runs, exp.point_label(i)) {
            Ok(plan) => {
                plans.push(plan);
                measured_rows.push(i);
            }
            Err(why) => rows[i].not_applicable = Some(why),
        }
    }
    let results = bench::run_many(&plans, progress);
    for ((i, plan), mut subject) in measured_rows.into_iter().zip(&plans).zip(results) {
        let Some(s) = subject.pop() else { continue };
        let summaries = bench::summarise(std::slice::from_ref(&s));
        let r = &mut rows[i];
        summarise(r, FIGURES, &s.runs);
        r.warnings.extend(bench::saturated_client(&summaries));
        let uncounted = bench::uncounted_calls(&plan.subjects, &summaries);
        for summary in summaries {
            r.warnings.extend(summary.warnings);
            r.warnings
                .extend(summary.disagreements.into_iter().map(Warning::Disagreement));
        }
        r.warnings.extend(uncounted);
        r.not_applicable = s.not_applicable;
        r.failures = s.failures;
    }
    rows
}

/// The bench of one echo point: its one subject under its workload; Err says why
/// the point cannot run.
fn plan(point: &[Setting], runs: usize, label: String) -> Result<BenchPlan, String> {
    let (mut backend, mut model, mut threads) = (
        server::DEFAULT_BACKEND,
        server::DEFAULT_MODEL,
        server::DEFAULT_THREADS,
    );
    let (mut read_strategy, mut buffer_size, mut ring, mut external) = (None, None, None, None);
    let (mut server_cpus, cpus) = bench::default_pinning();
    let mut kernel_counts = false;
    let mut load = LoadConfig {
        cpus,
        ..LoadConfig::DEFAULT
    };
    for s in point {
        match s.clone() {
            Setting::Backend(b) => backend = b,
            Setting::Model(m) => model = m,
            Setting::ServerThreads(n) => threads = n,
            Setting::External(r) => external = Some(r),
            Setting::ServerCpus(l) => server_cpus = l.0,
            Setting::ClientCpus(l) => load.cpus = l.0,
            Setting::Connections(n) => load.connections = n,
            Setting::IdleConnections(n) => load.idle_connections = n,
            Setting::Payload(n) => load.payload = n,
            Setting::Pipeline(n) => load.pipeline = n,
            Setting::Protocol(p) => load.protocol = p,
            Setting::Driver(d) => load.driver = d,
            Setting::BufferSize(n) => buffer_size = Some(n),
            Setting::ReadStrategy(r) => read_strategy = Some(r),
            Setting::Ring(r) => ring = Some(r),
            Setting::KernelCounts(k) => kernel_counts = k,
            Setting::Duration(d) => load.duration = Some(d),
            Setting::Warmup(d) => load.warmup = d,
            _ => unreachable!(
                "{} is not an echo setting: Setting::parse refuses it",
                s.key()
            ),
        }
    }
    if read_strategy.is_some_and(|r| r.strands_data(backend.trigger())) {
        return Err("n/a (one read per edge strands data)".to_string());
    }
    if ring.is_some() && backend != Backend::IoUring {
        return Err("n/a (ring setups are io-uring's)".to_string());
    }
    if load::check_payload(load.payload, load.protocol).is_err() {
        let size = crate::units::Size(load.payload);
        return Err(format!("n/a ({} cannot carry {size})", load.protocol));
    }
    // Our server's own settings say nothing of a real one: a point that gives both
    // would measure something else than its label says.
    if let Some(real) = external
        && let Some(ours) = point.iter().find(|s| {
            matches!(
                s,
                Setting::Backend(_)
                    | Setting::Model(_)
                    | Setting::ReadStrategy(_)
                    | Setting::BufferSize(_)
                    | Setting::Ring(_)
            )
        })
    {
        return Err(format!(
            "n/a ({} is a setting of our server, not of {real})",
            ours.key()
        ));
    }
    let subject = match external {
        Some(real) => Subject::real(real, threads),
        None => Subject::ours(backend, model, threads),
    };
    let plan = BenchPlan {
        subjects: vec![subject],
        runs,
        server_cpus,
        server_args: bench::server_args(read_strategy, buffer_size, ring, load.protocol),
        load,
        kernel_counts,
        // An experiment of one point varies nothing: its subject names it.
        label: Some(label).filter(|l| !l.is_empty()),
    };
    match plan.cannot_run(&plan.subjects[0]) {
        Some(why) => Err(why),
        None => Ok(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::RealServer;
    use crate::server::Model;

    /// `external` makes the point's subject the real server, its threads the point's
    /// server_threads; our server's own settings beside it make the point n/a.
    #[test]
    fn a_real_server_is_the_subject_and_takes_none_of_ours_settings() {
        let redis = Setting::External(RealServer::Redis);
        let redis_plan = plan(
            &[redis.clone(), Setting::ServerThreads(3)],
            1,
            String::new(),
        )
        .expect("redis-server is installed where the tests run");
        let Subject::External { name, command, .. } = &redis_plan.subjects[0] else {
            panic!("{redis_plan:?}")
        };
        assert_eq!(name, "redis x3");
        assert!(command.contains("--io-threads 3 "), "{command}");
        let why = plan(&[redis, Setting::Model(Model::Dispatch)], 1, String::new()).unwrap_err();
        assert_eq!(why, "n/a (model is a setting of our server, not of redis)");
    }
}
