package api

// capgoRoutes lists the routes of this protocol adapter.
func capgoRoutes() []Route { return nil }
