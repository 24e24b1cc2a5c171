package api

// checkDeviceRoutes lists the routes of this protocol adapter.
func checkDeviceRoutes() []Route { return nil }
