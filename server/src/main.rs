//! The `o11y` binary (being built).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("o11y serve is not available yet")
}
