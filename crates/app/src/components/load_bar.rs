//! Download and build progress: bytes, total and rate while downloading, then a separate
//! progress for building the model.

use omp_protocol::LoadPhase;
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};
use crate::state::LoadState;

/// The progress bar, shown while a model loads.
#[function_component(LoadBar)]
pub fn load_bar() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
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
        .filter(|n| *n > 0)
        .map(|n| (*done as f64 / n as f64).clamp(0.0, 1.0));
    let bytes_phase = matches!(
        phase,
        LoadPhase::Downloading | LoadPhase::ReadingCache | LoadPhase::Checking
    );
    let detail = if bytes_phase {
        let secs = ((now - phase_started) / 1000.0).max(0.001);
        let rate = fmt_bytes((done.saturating_sub(*phase_done0) as f64 / secs) as u64);
        match total {
            Some(n) => format!("{} {} {} · {rate}/s", fmt_bytes(*done), t.of, fmt_bytes(*n)),
            None => format!("{} · {rate}/s", fmt_bytes(*done)),
        }
    } else {
        match total {
            Some(n) => format!("{done} {} {n} {}", t.of, t.tensors),
            None => String::new(),
        }
    };
    html! {
        <div class="panel load" data-testid="load-progress">
            <div class="load-label">{ format!("{} {label}", t.phase(*phase)) }</div>
            <progress max="1" value={fraction.map(|f| f.to_string())} aria-label={t.phase(*phase)}></progress>
            <div class="load-detail">{ detail }</div>
        </div>
    }
}
