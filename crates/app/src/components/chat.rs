//! The conversation: history, system prompt, input, Send / Stop / Clear. Model output is always
//! rendered as text, never as HTML.

use web_sys::{HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;

/// The chat panel.
#[function_component(Chat)]
pub fn chat() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let input = use_node_ref();
    let s = &ctx.state;

    // A link's prompt starts in the input box.
    {
        let input = input.clone();
        let prompt = ctx.link.prompt.clone();
        use_effect_with((), move |_| {
            if let (Some(el), Some(p)) = (input.cast::<HtmlTextAreaElement>(), prompt) {
                el.set_value(&p);
            }
        });
    }

    let send = {
        let ctx = ctx.clone();
        let input = input.clone();
        Callback::from(move |_: ()| {
            let Some(el) = input.cast::<HtmlTextAreaElement>() else {
                return;
            };
            let text = el.value();
            if ctx.state.can_send() && !text.trim().is_empty() {
                ctx.send(&text);
                el.set_value("");
            }
        })
    };
    let on_key = {
        let send = send.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
                e.prevent_default();
                send.emit(());
            }
        })
    };
    let on_send = {
        let send = send.clone();
        Callback::from(move |_: MouseEvent| send.emit(()))
    };
    let on_stop = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.stop())
    };
    let on_clear = {
        let ctx = ctx.clone();
        let input = input.clone();
        Callback::from(move |_: MouseEvent| {
            ctx.state.dispatch(Action::Clear);
            // Clear disables itself; keep keyboard focus somewhere useful, not on <body>.
            if let Some(el) = input.cast::<HtmlTextAreaElement>() {
                let _ = el.focus();
            }
        })
    };
    let on_system = {
        let ctx = ctx.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(el) = e.target_dyn_into::<HtmlTextAreaElement>() {
                ctx.state.dispatch(Action::SetSystem(el.value()));
            }
        })
    };

    let last_assistant = s.turns.iter().rposition(|turn| turn.role == "assistant");
    let turns = s.turns.iter().enumerate().map(|(i, turn)| {
        let latest = Some(i) == last_assistant;
        let ids = turn.token_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        html! {
            <li class={classes!("turn", turn.role.clone(), (!turn.done).then_some("streaming"))}>
                <span class="role">{ if turn.role == "user" { t.you } else { t.the_model } }</span>
                if latest {
                    <div class="text" data-testid="output" data-token-ids={ids} data-done={turn.done.to_string()}>{ &turn.text }</div>
                } else {
                    <div class="text">{ &turn.text }</div>
                }
            </li>
        }
    });

    html! {
        <div class="panel chat">
            <details class="system">
                <summary>{ t.system_prompt }</summary>
                <label for="system-prompt" class="visually-hidden">{ t.system_prompt }</label>
                <textarea id="system-prompt" rows="2" value={s.system.clone()} oninput={on_system}
                    placeholder={t.system_placeholder} data-testid="system" />
            </details>
            <ol class="transcript" aria-live="polite" aria-label={t.the_model}>
                { for turns }
            </ol>
            if let Some(p) = &s.prompt_text {
                <details class="prompt-view">
                    <summary>{ format!("{} ({} {})", t.model_saw, s.prompt_tokens.unwrap_or(0), t.tokens_after_template) }</summary>
                    <pre>{ p }</pre>
                </details>
            }
            <div class="compose">
                <label for="prompt" class="visually-hidden">{ t.your_message }</label>
                <textarea id="prompt" ref={input} rows="3" onkeydown={on_key} data-testid="prompt"
                    placeholder={t.prompt_placeholder} />
                <div class="buttons">
                    <button class="primary" onclick={on_send} disabled={!s.can_send()} data-testid="send">{ t.send }</button>
                    <button onclick={on_stop} disabled={s.running.is_none() || s.stopping} data-testid="stop">{ t.stop }</button>
                    <button onclick={on_clear} disabled={s.running.is_some() || s.turns.is_empty()} data-testid="clear">{ t.clear }</button>
                </div>
            </div>
        </div>
    }
}
