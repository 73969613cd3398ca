//! The report, in markdown on stdout: a header that says how the figures were made (so a
//! pasted report can be judged and re-run), the medians across rounds for each row with the
//! spread of p50, and the ratios against the direct and plain-gateway rows, computed within
//! each round and then reduced to their median.

use std::time::SystemTime;

use crate::client::ErrorCounts;
use crate::procstat::{self, Machine};
use crate::rounds::{Row, Sample, Schedule};

/// How the run was made.
pub struct Meta {
    pub command: String,
    pub started: SystemTime,
    pub machine: Machine,
    /// The gateway binary, described; `None` with `--direct-only`.
    pub gateway: Option<String>,
    pub gateway_log: String,
    /// Variables taken out of the gateways' environment.
    pub scrubbed: Vec<String>,
    pub backend: String,
    pub driver_threads: usize,
    /// One line per target: label, config, tokens.
    pub targets: Vec<String>,
    /// The tokens' story, when some row sends them.
    pub tokens: Option<String>,
}

pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

fn signed(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:+.0}"))
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The errors cell: `0`, or `⚠ 3 errors (HTTP 2, timeout 1)`.
fn errors_cell(errors: &ErrorCounts) -> String {
    match errors.total() {
        0 => "0".into(),
        1 => format!("⚠ 1 error ({})", errors.describe()),
        n => format!("⚠ {n} errors ({})", errors.describe()),
    }
}

pub fn print_header(meta: &Meta, schedule: &Schedule) {
    let m = &meta.machine;
    println!("## Tollgate load report");
    println!();
    println!("- date: {}", procstat::utc(meta.started));
    println!("- command: `{}`", meta.command);
    println!("- machine: {} CPUs (nproc), {}, Linux {}", m.cpus, m.model, m.kernel);
    if let Some(gateway) = &meta.gateway {
        let scrubbed = if meta.scrubbed.is_empty() { String::new() } else { format!("; removed from its environment: {}", meta.scrubbed.join(", ")) };
        println!("- gateway: {gateway}, one process per target; log level `{}` (`TOLLGATE_LOG` and `RUST_LOG`){scrubbed}", meta.gateway_log);
    }
    println!("- backend: {}", meta.backend);
    println!("- driver: loadgen, {} runtime threads; per worker one HTTP/1.1 keep-alive connection and one MCP session", meta.driver_threads);
    let levels: Vec<String> = schedule.concurrency.iter().map(ToString::to_string).collect();
    println!(
        "- load: `tools/call echo` in a closed loop, {} bytes of padding; {} round(s); in each, for each concurrency ({}), every target in turn, {:?} warm-up then {:?} measured",
        schedule.payload_bytes,
        schedule.rounds,
        levels.join(", "),
        schedule.warmup,
        schedule.duration
    );
    for target in &meta.targets {
        println!("- target {target}");
    }
    if let Some(tokens) = &meta.tokens {
        println!("- tokens: {tokens}");
    }
    println!();
}

/// Prints the tables; returns whether any row had errors.
pub fn print_rows(rows: &[Row], schedule: &Schedule) -> bool {
    let rounds = if schedule.rounds == 1 { "One round".to_string() } else { format!("Medians of {} rounds", schedule.rounds) };
    println!("{rounds}; CPU from each process's own accounting (`/proc/PID/stat`), over the measured window only.");
    println!();
    println!(
        "| target | concurrency | requests/s | p50 µs | p50 min–max µs | p99 µs | gateway CPU µs/req | backend CPU µs/req | driver CPU µs/req | backend connections accepted | errors |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut any_errors = false;
    for row in rows {
        let s = &row.samples;
        let mut errors = ErrorCounts::default();
        s.iter().for_each(|x| errors.merge(&x.errors));
        any_errors |= errors.total() > 0;
        let p50_min = s.iter().map(|x| x.p50).min().unwrap_or(0);
        let p50_max = s.iter().map(|x| x.p50).max().unwrap_or(0);
        let cpu = |f: fn(&Sample) -> Option<f64>| median(s.iter().filter_map(f));
        println!(
            "| {} | {} | {} | {} | {p50_min}–{p50_max} | {} | {} | {} | {} | {} | {} |",
            row.label,
            row.concurrency,
            num(median(s.iter().map(|x| x.rps))),
            num(median(s.iter().map(|x| x.p50 as f64))),
            num(median(s.iter().map(|x| x.p99 as f64))),
            num(cpu(|x| x.per_request(x.cpu.gateway))),
            num(cpu(|x| x.per_request(x.cpu.backend))),
            num(cpu(|x| x.per_request(x.cpu.driver))),
            num(median(s.iter().map(|x| x.backend_accepted as f64))),
            errors_cell(&errors),
        );
    }

    print_ratios(rows);
    print_notes(rows);
    any_errors
}

/// Per round, against the same round's direct and plain-gateway rows; then the median.
fn print_ratios(rows: &[Row]) {
    let gateway_rows: Vec<&Row> = rows.iter().filter(|r| !r.direct).collect();
    let Some(_) = gateway_rows.first() else {
        return;
    };
    let find = |pred: fn(&Row) -> bool, c: usize| rows.iter().find(|r| pred(r) && r.concurrency == c);
    println!();
    println!("Against the same round's `direct` and plain `gateway` rows at the same concurrency (medians of the per-round figures):");
    println!();
    println!(
        "| target | concurrency | added p50 µs vs direct | requests/s vs direct | added p50 µs vs gateway | requests/s vs gateway | added gateway CPU µs/req vs gateway |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in gateway_rows {
        let direct = find(|r| r.direct, row.concurrency);
        let plain = if row.plain { None } else { find(|r| r.plain, row.concurrency) };
        let added_p50 = |base: Option<&Row>| base.and_then(|b| median(row.samples.iter().zip(&b.samples).map(|(x, y)| x.p50 as f64 - y.p50 as f64)));
        let throughput =
            |base: Option<&Row>| base.and_then(|b| median(row.samples.iter().zip(&b.samples).filter(|(_, y)| y.rps > 0.0).map(|(x, y)| x.rps / y.rps)));
        let added_cpu = plain
            .and_then(|b| median(row.samples.iter().zip(&b.samples).filter_map(|(x, y)| Some(x.per_request(x.cpu.gateway)? - y.per_request(y.cpu.gateway)?))));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            row.concurrency,
            signed(added_p50(direct)),
            percent(throughput(direct)),
            signed(added_p50(plain)),
            percent(throughput(plain)),
            signed(added_cpu),
        );
    }
}

/// Fresh tokens minted late, and what the errors said.
fn print_notes(rows: &[Row]) {
    let mut notes = Vec::new();
    for row in rows {
        let late: u64 = row.samples.iter().map(|s| s.late_tokens).sum();
        if late > 0 {
            notes.push(format!(
                "- {} c{}: the token stock ran out {late} times; those calls waited for a token to be minted (not timed, but the driver paused)",
                row.label, row.concurrency
            ));
        }
        let mut seen: Vec<&String> = Vec::new();
        for message in row.samples.iter().flat_map(|s| &s.error_samples.0) {
            if seen.len() < 5 && !seen.contains(&message) {
                seen.push(message);
                notes.push(format!("- {} c{} error: {message}", row.label, row.concurrency));
            }
        }
    }
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("{note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }
}
