//! Download and build progress: bytes, total and rate while downloading, then a separate
//! progress for building the model.

use omp_protocol::LoadPhase;
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};
use crate::state::LoadState;

fn phase_label(p: LoadPhase) -> &'static str {
    match p {
        LoadPhase::Checking => "Checking the file",
        LoadPhase::Downloading => "Downloading",
        LoadPhase::ReadingCache => "Reading",
        LoadPhase::Verifying => "Verifying the checksum",
        LoadPhase::Building => "Building the model",
    }
}

/// The progress bar, shown while a model loads.
#[function_component(LoadBar)]
pub fn load_bar() -> Html {
    let ctx = use_ctx();
    let LoadState::Loading {
        label,
        phase,
        done,
        total,
        phase_started,
        phase_done0,
        now,
    } = &ctx.state.load
    else {
        return Html::default();
    };
    let fraction = total
        .filter(|t| *t > 0)
        .map(|t| (*done as f64 / t as f64).clamp(0.0, 1.0));
    let bytes_phase = matches!(
        phase,
        LoadPhase::Downloading | LoadPhase::ReadingCache | LoadPhase::Checking
    );
    let detail = if bytes_phase {
        let secs = ((now - phase_started) / 1000.0).max(0.001);
        let rate = done.saturating_sub(*phase_done0) as f64 / secs;
        match total {
            Some(t) => format!(
                "{} of {} · {}/s",
                fmt_bytes(*done),
                fmt_bytes(*t),
                fmt_bytes(rate as u64)
            ),
            None => format!("{} · {}/s", fmt_bytes(*done), fmt_bytes(rate as u64)),
        }
    } else {
        match total {
            Some(t) => format!("{done} of {t} tensors"),
            None => String::new(),
        }
    };
    html! {
        <div class="panel load" data-testid="load-progress">
            <div class="load-label">{ format!("{} {label}", phase_label(*phase)) }</div>
            <progress max="1" value={fraction.map(|f| f.to_string())} aria-label={phase_label(*phase)}></progress>
            <div class="load-detail">{ detail }</div>
        </div>
    }
}
