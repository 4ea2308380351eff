//! The error panel: every failure in plain words, each dismissable; the page keeps working.

use omp_protocol::ErrorKind;
use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;

fn title(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadModel => "This file cannot be used",
        ErrorKind::TooLarge => "Too large for a browser tab",
        ErrorKind::Network => "Download problem",
        ErrorKind::Storage => "Browser storage",
        ErrorKind::Template => "Chat template problem",
        ErrorKind::BadRequest => "Cannot do that",
        ErrorKind::Internal => "Engine problem",
    }
}

/// The list of problems.
#[function_component(Notices)]
pub fn notices() -> Html {
    let ctx = use_ctx();
    if ctx.state.notices.is_empty() {
        return Html::default();
    }
    let items = ctx.state.notices.iter().map(|n| {
        let dismiss = {
            let ctx = ctx.clone();
            let id = n.id;
            Callback::from(move |_: MouseEvent| ctx.state.dispatch(Action::Dismiss(id)))
        };
        html! {
            <li class={classes!("notice", format!("{:?}", n.kind).to_lowercase())}>
                <strong>{ title(n.kind) }</strong>
                <p>{ &n.message }</p>
                <button onclick={dismiss} aria-label="Dismiss this message">{ "Dismiss" }</button>
            </li>
        }
    });
    html! {
        <div class="panel notices" data-testid="error" role="alert">
            <ul>{ for items }</ul>
        </div>
    }
}
