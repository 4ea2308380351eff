//! The error panel: every failure in plain words, each dismissable; the page keeps working.

use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;

/// The list of problems.
#[function_component(Notices)]
pub fn notices() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
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
                <strong>{ t.error_title(n.kind) }</strong>
                <p lang="en">{ &n.message }</p>
                <button onclick={dismiss}>{ t.dismiss }</button>
            </li>
        }
    });
    html! {
        <div class="panel notices" data-testid="error" role="alert">
            <ul>{ for items }</ul>
        </div>
    }
}
