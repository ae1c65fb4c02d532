// The dashboard's entry point: builds each section and keeps the URL in step with the filters,
// so the address bar always holds a link to what is on screen.

import { AccountView } from "./account.js";
import { loadGpus } from "./gpus.js";
import { OffersView } from "./offers.js";
import { RentDialog } from "./rent.js";
import { sortable } from "./sort.js";
import { SpotView } from "./spot.js";

function main() {
  const params = new URLSearchParams(window.location.search);
  let offers = null;
  let spot = null;
  const syncUrl = () => {
    const query = new URLSearchParams([...offers.params(), ...spot.params()]).toString();
    window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
  };
  for (const table of document.querySelectorAll("table.sortable-table")) {
    sortable(table);
  }
  const account = new AccountView();
  const dialog = new RentDialog(() => account.start());
  offers = new OffersView(syncUrl, (offer) => dialog.open(offer));
  spot = new SpotView(syncUrl);
  offers.restore(params);
  spot.restore(params);
  offers.load(false);
  loadGpus({
    onOffers: (gpu) => {
      offers.setGpu(gpu);
      document.getElementById("offers").scrollIntoView({ behavior: "smooth" });
    },
    onChart: (gpu) => spot.choose(gpu),
  }).then((rows) => spot.setGpus(rows));
  account.start();
}

main();
