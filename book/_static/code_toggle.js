// One toggle per chapter page: show (or fold again) every folded code cell at once.
// Plots, checks and setup are folded (the cell tag hide-input) so that the page reads as
// a lesson; a reader who wants all of the code clicks once instead of once per cell.
// Exercise solutions (the tag solution) stay folded: they are opened one at a time.
document.addEventListener("DOMContentLoaded", () => {
  const article = document.querySelector("article.bd-article");
  if (!article) return;
  const folded = () => [...article.querySelectorAll("div.cell:not(.tag_solution) > details.hide")];
  if (!folded().length) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "code-toggle";
  const label = (open) => (open ? "Fold the code again" : "Show all code on this page");
  button.textContent = label(false);
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-pressed") !== "true";
    folded().forEach((d) => { d.open = open; });
    button.setAttribute("aria-pressed", String(open));
    button.textContent = label(open);
  });
  const title = article.querySelector("h1");
  (title || article.firstElementChild).after(button);
});
