// Plugin versions live in gradle/libs.versions.toml; each module applies the one it needs.
plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.android.library) apply false
}
