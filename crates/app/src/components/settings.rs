//! Sampling controls.

use omp_protocol::SamplingParams;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;

#[derive(Clone, Copy)]
struct Field {
    id: &'static str,
    label: &'static str,
    help: &'static str,
    min: f64,
    max: f64,
    step: f64,
    get: fn(&SamplingParams) -> String,
    set: fn(&mut SamplingParams, f64),
}

const FIELDS: &[Field] = &[
    Field {
        id: "temperature",
        label: "Temperature",
        help: "0 always picks the most likely token; higher values take more chances.",
        min: 0.0,
        max: 2.0,
        step: 0.05,
        get: |p| p.temperature.to_string(),
        set: |p, v| p.temperature = v as f32,
    },
    Field {
        id: "top_k",
        label: "Top-k",
        help: "Choose among this many most likely tokens (0: all).",
        min: 0.0,
        max: 200.0,
        step: 1.0,
        get: |p| p.top_k.to_string(),
        set: |p, v| p.top_k = v as u32,
    },
    Field {
        id: "top_p",
        label: "Top-p",
        help: "Keep the most likely tokens until their probabilities add up to this (1: off).",
        min: 0.0,
        max: 1.0,
        step: 0.01,
        get: |p| p.top_p.to_string(),
        set: |p, v| p.top_p = v as f32,
    },
    Field {
        id: "min_p",
        label: "Min-p",
        help: "Drop tokens less likely than this fraction of the best one (0: off).",
        min: 0.0,
        max: 1.0,
        step: 0.01,
        get: |p| p.min_p.to_string(),
        set: |p, v| p.min_p = v as f32,
    },
    Field {
        id: "repeat_penalty",
        label: "Repeat penalty",
        help: "Make recently used tokens less likely (1: off).",
        min: 0.5,
        max: 2.0,
        step: 0.05,
        get: |p| p.repeat_penalty.to_string(),
        set: |p, v| p.repeat_penalty = v as f32,
    },
    Field {
        id: "max_tokens",
        label: "Max new tokens",
        help: "Stop after this many tokens.",
        min: 1.0,
        max: 2048.0,
        step: 1.0,
        get: |p| p.max_tokens.to_string(),
        set: |p, v| p.max_tokens = v as u32,
    },
    Field {
        id: "seed",
        label: "Seed",
        help: "The same seed and settings give the same answer.",
        min: 0.0,
        max: 4_294_967_295.0,
        step: 1.0,
        get: |p| p.seed.to_string(),
        set: |p, v| p.seed = v as u64,
    },
];

/// The sampling panel.
#[function_component(Settings)]
pub fn settings() -> Html {
    let ctx = use_ctx();
    let params = ctx.state.params.clone();
    let rows = FIELDS.iter().map(|f| {
        let onchange = {
            let ctx = ctx.clone();
            let f = *f;
            Callback::from(move |e: Event| {
                let Some(el) = e.target_dyn_into::<HtmlInputElement>() else { return };
                let Ok(v) = el.value().trim().parse::<f64>() else { return };
                let mut p = ctx.state.params.clone();
                (f.set)(&mut p, v.clamp(f.min, f.max));
                if p.validate().is_ok() {
                    ctx.state.dispatch(Action::SetParams(p));
                }
            })
        };
        let value = (f.get)(&params);
        let help_id = format!("{}-help", f.id);
        html! {
            <div class="setting">
                <label for={f.id}>{ f.label }</label>
                <input id={f.id} type="number" min={f.min.to_string()} max={f.max.to_string()} step={f.step.to_string()}
                    value={value} onchange={onchange} aria-describedby={help_id.clone()} data-testid={format!("param-{}", f.id)} />
                <span class="hint" id={help_id}>{ f.help }</span>
            </div>
        }
    });
    let new_seed = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| {
            let mut p = ctx.state.params.clone();
            p.seed = (js_sys::Math::random() * 4_294_967_295.0) as u64;
            ctx.state.dispatch(Action::SetParams(p));
        })
    };
    html! {
        <div class="settings">
            { for rows }
            <div class="setting"><button onclick={new_seed}>{ "New random seed" }</button></div>
        </div>
    }
}
