// Tell the updater this bundle started correctly, or the device rolls it back.
// @capgo/capacitor-updater: CapacitorUpdater.notifyAppReady()
(function () {
  var status = document.getElementById('status');
  var cap = window.Capacitor;
  var updater = cap && cap.Plugins && cap.Plugins.CapacitorUpdater;
  if (updater && updater.notifyAppReady) {
    updater.notifyAppReady().then(function () {
      status.textContent = 'Bundle running; notifyAppReady sent.';
    });
  } else {
    status.textContent = 'Bundle running (no updater plugin in this browser).';
  }
})();
