// The countdown to the unit's deadline, counted down in the browser between page loads.
const el = document.getElementById("countdown");
if (el) { let s = Number(el.dataset.seconds); setInterval(() => { s = Math.max(0, s - 1);
  el.textContent = `${Math.floor(s/86400)} d ${Math.floor(s%86400/3600)} h ${Math.floor(s%3600/60)} min ${s%60} s kvar`; }, 1000); }
