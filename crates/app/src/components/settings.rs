//! Sampling controls.

use omp_protocol::SamplingParams;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;

#[derive(Clone, Copy)]
struct Field {
    id: &'static str,
    min: f64,
    max: f64,
    step: f64,
    get: fn(&SamplingParams) -> String,
    set: fn(&mut SamplingParams, f64),
}

const FIELDS: &[Field] = &[
    Field {
        id: "temperature",
        min: 0.0,
        max: 2.0,
        step: 0.05,
        get: |p| p.temperature.to_string(),
        set: |p, v| p.temperature = v as f32,
    },
    Field {
        id: "top_k",
        min: 0.0,
        max: 200.0,
        step: 1.0,
        get: |p| p.top_k.to_string(),
        set: |p, v| p.top_k = v as u32,
    },
    Field {
        id: "top_p",
        min: 0.0,
        max: 1.0,
        step: 0.01,
        get: |p| p.top_p.to_string(),
        set: |p, v| p.top_p = v as f32,
    },
    Field {
        id: "min_p",
        min: 0.0,
        max: 1.0,
        step: 0.01,
        get: |p| p.min_p.to_string(),
        set: |p, v| p.min_p = v as f32,
    },
    Field {
        id: "repeat_penalty",
        min: 0.5,
        max: 2.0,
        step: 0.05,
        get: |p| p.repeat_penalty.to_string(),
        set: |p, v| p.repeat_penalty = v as f32,
    },
    Field {
        id: "max_tokens",
        min: 1.0,
        max: 2048.0,
        step: 1.0,
        get: |p| p.max_tokens.to_string(),
        set: |p, v| p.max_tokens = v as u32,
    },
    Field {
        id: "seed",
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
    let t = ctx.t();
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
        let (label, help) = t.setting(f.id);
        html! {
            <div class="setting">
                <label for={f.id}>{ label }</label>
                <input id={f.id} type="number" min={f.min.to_string()} max={f.max.to_string()} step={f.step.to_string()}
                    value={value} onchange={onchange} aria-describedby={help_id.clone()} data-testid={format!("param-{}", f.id)} />
                <span class="hint" id={help_id}>{ help }</span>
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
            <div class="setting"><button onclick={new_seed}>{ t.new_seed }</button></div>
        </div>
    }
}
