//! Chat templates: the Jinja program in `tokenizer.chat_template` that turns a conversation into
//! the prompt text the model was fine-tuned on.
//!
//! A template comes from the model file, so it is untrusted code. It runs in minijinja with a
//! fuel budget (bounding instructions and memory), a recursion limit and a cap on output
//! length; anything that goes wrong is a [`Error::Template`] naming the problem.

use std::io::Write;

use minijinja::{context, Environment, ErrorKind};
use omp_protocol::ChatMessage;

use crate::error::{Error, Result};

/// Instructions (roughly) a render may execute; generous for any real template and history.
const FUEL: u64 = 2_000_000;
/// Nesting depth of blocks, macros and includes.
const RECURSION_LIMIT: usize = 64;
/// Longest prompt a template may produce.
const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Used when a file has no template but its vocabulary knows ChatML's markers.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Used when a file has neither a template nor ChatML markers: plain text turns.
const PLAIN: &str = "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    from_file: bool,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles a template; `bos_token`/`eos_token` are the texts templates may reference.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        Self::compile(source.to_string(), true, bos_token.into(), eos_token.into())
    }

    /// The fallback for files without a template: ChatML when the vocabulary has
    /// `<|im_start|>`, otherwise plain "Role: text" turns.
    pub fn fallback(has_chatml_tokens: bool, bos_token: &str, eos_token: &str) -> Self {
        let src = if has_chatml_tokens { CHATML } else { PLAIN };
        Self::compile(src.to_string(), false, bos_token.into(), eos_token.into())
            .expect("the built-in templates compile (tested)")
    }

    fn compile(source: String, from_file: bool, bos_token: String, eos_token: String) -> Result<Self> {
        let mut env = Environment::new();
        // Hugging Face renders templates with these settings; templates are written for them.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        // Python string and dict methods (`.strip()`, `.items()`, ...) that templates use.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("the template raised: {msg}"),
                ))
            },
        );
        env.add_template_owned("chat", source.clone())
            .map_err(|e| Error::Template(describe(&e)))?;
        Ok(Self {
            env,
            source,
            from_file,
            bos_token,
            eos_token,
        })
    }

    /// Whether the template came from the model file (rather than a fallback).
    pub fn from_file(&self) -> bool {
        self.from_file
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation. With `add_generation_prompt`, the text ends where the assistant's
    /// answer begins.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(describe(&e)))?;
        let msgs: Vec<_> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let ctx = context! {
            messages => msgs,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        let mut out = LimitedWriter::default();
        tmpl.render_captured_to(ctx, &mut out).map_err(|e| {
            if out.overflowed {
                Error::Template(format!(
                    "the rendered prompt exceeds {} MiB",
                    MAX_OUTPUT_BYTES >> 20
                ))
            } else {
                Error::Template(describe(&e))
            }
        })?;
        String::from_utf8(out.buf).map_err(|_| Error::Template("the template produced invalid UTF-8".into()))
    }
}

/// One line for people: the error kind, its detail and where in the template.
fn describe(e: &minijinja::Error) -> String {
    let what = match e.kind() {
        ErrorKind::OutOfFuel => "the template ran too long (out of fuel)".to_string(),
        _ => e
            .detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
    };
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

/// Collects output and fails once it passes [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct LimitedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_smollm_template_with_default_system_prompt() {
        let t = ChatTemplate::new(SMOLLM, "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t
            .render(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", "Hi"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn python_methods_and_whitespace_control_work() {
        let src =
            "{% for m in messages %}\n  {{ m['content'].strip() | upper }}{{ eos_token }}\n{% endfor %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "  hi ")], false).unwrap(),
            "  HI</s>\n"
        );
    }

    #[test]
    fn broken_template_is_a_clear_error() {
        let err = ChatTemplate::new("{% for m in messages %}", "", "").unwrap_err();
        assert!(matches!(err, Error::Template(_)), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn raise_exception_is_reported() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let err = t.render(&[], true).unwrap_err().to_string();
        assert!(err.contains("roles must alternate"), "{err}");
    }

    #[test]
    fn endless_template_runs_out_of_fuel() {
        let src = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        let err = t.render(&[], true).unwrap_err().to_string();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn huge_output_is_refused() {
        let src = "{% for i in range(10000) %}{{ 'x' * 10000 }}{% endfor %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert!(t.render(&[], true).is_err());
    }

    #[test]
    fn fallbacks_render() {
        let t = ChatTemplate::fallback(true, "", "");
        assert!(t
            .render(&[ChatMessage::new("user", "x")], true)
            .unwrap()
            .ends_with("<|im_start|>assistant\n"));
        let t = ChatTemplate::fallback(false, "", "");
        assert_eq!(
            t.render(&[ChatMessage::new("user", "x")], true).unwrap(),
            "User: x\n\nAssistant:"
        );
    }
}
