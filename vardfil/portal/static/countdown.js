// The countdown to the unit's deadline, counted down in the browser between page loads. Once a
// minute, not every second, and not announced (role="timer" is not live): a screen reader user
// is not interrupted, and nothing on the page moves while someone reads it (WCAG 2.2.2).
const el = document.getElementById("countdown");
if (el) {
  let s = Number(el.dataset.seconds);
  const show = () => { el.textContent = `${Math.floor(s/86400)} d ${Math.floor(s%86400/3600)} h ${Math.floor(s%3600/60)} min kvar`; };
  setInterval(() => { s = Math.max(0, s - 60); show(); }, 60000);
}
