//! The loaded model's shape, read from its metadata: blocks, widths, how query heads share keys
//! and values (MHA, GQA or MQA, with a small diagram), sliding windows, experts and vocabulary.
//! The lesson's Falcon (multi-query attention) and Mistral (mixture of experts, sliding window)
//! claims can be checked here on a real file.

use omp_protocol::ModelInfo;
use yew::prelude::*;

use super::use_ctx;

/// What the key/value heads are, by how many query heads share each.
pub fn attention_kind(heads: u32, kv_heads: u32) -> &'static str {
    if kv_heads == 0 || kv_heads >= heads {
        "MHA"
    } else if kv_heads == 1 {
        "MQA"
    } else {
        "GQA"
    }
}

/// Properties of [`Architecture`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The loaded model.
    pub info: std::rc::Rc<ModelInfo>,
}

/// Heads drawn in the diagram at most (larger models show the first groups).
const DRAWN: u32 = 32;

/// The loaded model's architecture, collapsed under its one-line summary.
#[function_component(Architecture)]
pub fn architecture(p: &Props) -> Html {
    let t = use_ctx().t();
    let m = &p.info;
    let kind = attention_kind(m.heads, m.kv_heads);
    let per_group = m.heads.checked_div(m.kv_heads).unwrap_or(1).max(1);
    let fill = |template: &str, values: &[(&str, u32)]| {
        values.iter().fold(template.to_string(), |s, (k, v)| {
            s.replace(&format!("{{{k}}}"), &v.to_string())
        })
    };
    let heads_row = fill(
        t.arch_attention_row,
        &[("q", m.heads), ("kv", m.kv_heads), ("d", m.head_dim)],
    );
    let mut rows = vec![
        (t.arch_blocks, format!("{} × {}", m.layers, m.embedding_length)),
        (t.arch_attention, format!("{kind}: {heads_row}")),
    ];
    if let Some(w) = m.sliding_window {
        let row = fill(
            t.arch_window_row,
            &[("w", w), ("n", m.sliding_layers), ("l", m.layers)],
        );
        rows.push((t.arch_window, row));
    }
    if m.experts > 0 {
        let row = fill(t.arch_experts_row, &[("used", m.experts_used), ("n", m.experts)]);
        rows.push((t.arch_experts, row));
    }
    rows.push((t.arch_vocab, m.vocab_size.to_string()));
    rows.push((t.arch_context, m.context_length.to_string()));
    // One column per query head, coloured by the key/value head it reads.
    let drawn = m.heads.min(DRAWN);
    let (w, gap) = (10u32, 2u32);
    let width = drawn * (w + gap);
    let heads = (0..drawn).map(|h| {
        let g = h / per_group;
        let x = h * (w + gap);
        let class = if g.is_multiple_of(2) { "q even" } else { "q odd" };
        html! { <rect class={class} x={x.to_string()} y="0" width={w.to_string()} height="12" /> }
    });
    let groups = (0..drawn.div_ceil(per_group)).map(|g| {
        let x = g * per_group * (w + gap);
        let gw = (per_group.min(drawn - g * per_group)) * (w + gap) - gap;
        let class = if g.is_multiple_of(2) { "kv even" } else { "kv odd" };
        html! { <rect class={class} x={x.to_string()} y="18" width={gw.to_string()} height="12" /> }
    });
    let label = fill(t.arch_share, &[("q", m.heads), ("kv", m.kv_heads)]);
    html! {
        <details class="architecture" data-testid="architecture">
            <summary>{ format!("{}: {} · {kind}", t.arch_title, m.architecture) }</summary>
            <dl>
                { for rows.into_iter().map(|(k, v)| html! { <><dt>{ k }</dt><dd>{ v }</dd></> }) }
            </dl>
            <svg class="heads" role="img" aria-label={label.clone()} viewBox={format!("0 0 {width} 30")} width={width.to_string()} height="30">
                <title>{ label }</title>
                { for heads }
                { for groups }
            </svg>
            <p class="hint">{ t.arch_diagram }</p>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_kinds() {
        assert_eq!(attention_kind(32, 32), "MHA");
        assert_eq!(attention_kind(32, 8), "GQA");
        assert_eq!(attention_kind(71, 1), "MQA");
        assert_eq!(attention_kind(4, 0), "MHA");
    }
}
