# The probe test program scenarios run as app and sidecar containers, as an
# image FROM scratch (no base image is pulled). kind/build-images.sh builds
# the static binary and this image; kind clusters load it by name, which is
# why scenarios say imagePullPolicy: IfNotPresent.
FROM scratch
COPY probe /probe
ENTRYPOINT ["/probe"]
