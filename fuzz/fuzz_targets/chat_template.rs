//! Any template source compiled and rendered with fuel: an error is fine, a panic or a hang is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omp_engine::chat::ChatTemplate;
use omp_engine::protocol::ChatMessage;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let Ok(t) = ChatTemplate::new(&source, "<s>", "</s>") else {
        return;
    };
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hello {{ 1 }} <|im_end|>"),
        ChatMessage::new("assistant", "Hi."),
        ChatMessage::new("user", "안녕하세요"),
    ];
    let _ = t.render(&messages, true);
});
