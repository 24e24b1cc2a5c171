# Targets `sam build` runs for template.yaml (BuildMethod: makefile): SAM calls
# `make build-<LogicalId>` in the CodeUri folder (the repository root) with
# ARTIFACTS_DIR set to the function's folder under .aws-sam/build. Included by the
# root Makefile; infra/templatetest checks every function of template.yaml has its
# target here.

# Including this file never changes the including Makefile's default goal.
_sam_saved_default_goal := $(.DEFAULT_GOAL)

SAM_GO ?= go
SAM_GOENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
SAM_GOFLAGS := -trimpath -ldflags "-s -w" -tags lambda.norpc

# sam_build,<function folder>: build functions/<folder> into $(ARTIFACTS_DIR)/bootstrap.
define sam_build
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: this target is run by sam build" >&2; exit 1; }
	$(SAM_GOENV) $(SAM_GO) build $(SAM_GOFLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
endef

.PHONY: build-CheckFunction build-ConfirmFunction build-StatsFunction build-UploadFunction build-AdminFunction build-PatchFunction

build-CheckFunction:
	$(call sam_build,check)

build-ConfirmFunction:
	$(call sam_build,confirm)

build-StatsFunction:
	$(call sam_build,stats)

build-UploadFunction:
	$(call sam_build,upload)

build-AdminFunction:
	$(call sam_build,admin)

build-PatchFunction:
	$(call sam_build,patch)

.DEFAULT_GOAL := $(_sam_saved_default_goal)
