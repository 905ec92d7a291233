// The token view draws what its data says: one token span per token, one layer option per
// layer, and after switching to each layer every span carries that layer's key and value
// classes (with a visible background) or "none" when the token is not stored; the tooltip
// names the token's position and widths. Evaluated by check_render.py --eval-file.
(() => {
  const fail = (message) => { throw new Error(message); };
  const data = JSON.parse(document.getElementById("kvbits-data").textContent);
  const select = document.getElementById("layer");
  const spans = Array.from(document.querySelectorAll("#text .t"));
  if (spans.length !== data.tokens) fail(`${spans.length} token spans for ${data.tokens} tokens`);
  if (select.options.length !== data.key.length) fail(`${select.options.length} layer options for ${data.key.length} layers`);
  if (data.key.length === 0) fail("no layers");
  const colours = new Set();
  for (let layer = data.key.length - 1; layer >= 0; --layer) {
    select.value = String(layer);
    select.dispatchEvent(new Event("change"));
    if (!document.getElementById("summary").textContent.startsWith(`layer ${layer}:`)) fail(`summary of layer ${layer}`);
    spans.forEach((span, i) => {
      const key = data.key[layer][i];
      if (key === undefined) {
        if (!span.classList.contains("none")) fail(`token ${i} of layer ${layer} is not stored but not marked`);
        return;
      }
      const value = data.value[layer][i];
      if (!span.classList.contains(`k${key}`) || !span.classList.contains(`v${value}`)) {
        fail(`token ${i} of layer ${layer}: classes "${span.className}", widths ${key}/${value}`);
      }
      const style = getComputedStyle(span);
      if (style.backgroundColor === "rgba(0, 0, 0, 0)") fail(`token ${i}: no background for ${key}-bit keys`);
      colours.add(style.backgroundColor + " " + style.borderBottomColor);
    });
  }
  if (colours.size < 2) fail(`every token looks the same (${[...colours]})`);
  const last = spans.length - 1;
  spans[last].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
  const tip = document.getElementById("tip");
  if (tip.hidden || !tip.textContent.includes(`position ${last}`)) fail(`tooltip: "${tip.textContent}"`);
  spans[last].dispatchEvent(new MouseEvent("mouseleave", { bubbles: false }));
  document.getElementById("text").dispatchEvent(new MouseEvent("mouseleave"));
  if (!tip.hidden) fail("the tooltip stays after the pointer leaves");
  return true;
})()
