/* hostkeys: generating and loading the host keys (root only). */
#include "hostkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

struct hostkey_kind {
	enum ssh_keytypes_e type;
	int bits;
	const char *file;
};

static const struct hostkey_kind hostkey_kinds[HOSTKEYS_MAX] = {
	{ SSH_KEYTYPE_ED25519, 0, "ssh_host_ed25519_key" },
	{ SSH_KEYTYPE_ECDSA_P256, 256, "ssh_host_ecdsa_key" },
	{ SSH_KEYTYPE_RSA, 3072, "ssh_host_rsa_key" },
};

int hostkeys_fingerprint(ssh_key key, char *buf, size_t len)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0)
		return -1;
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	if (!fp)
		return -1;
	snprintf(buf, len, "%s", fp);
	ssh_string_free_char(fp);
	return 0;
}

/* The directory must be root's alone to write: whoever can write there
 * can replace a key and impersonate the host. */
static int hostkeys_dir(const char *dir)
{
	struct stat st;
	int r;

	if (lstat(dir, &st) < 0) {
		if (errno != ENOENT) {
			log_error_r(errno, "%s", dir);
			return -1;
		}
		r = fs_mkdir_p(dir, 0700, 0, 0);
		if (r < 0) {
			log_error_r(-r, "cannot create %s", dir);
			return -1;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		log_error("%s must be a directory owned by root and writable by root only", dir);
		return -1;
	}
	return 0;
}

/* Write the private key to a temporary name and rename it into place, so
 * a crash never leaves half a key that the next start would refuse. */
static int hostkeys_generate(const struct hostkey_kind *k, const char *path)
{
	char tmp[4096], pub[4096];
	ssh_key key = NULL;
	mode_t old;
	int r = -1;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp ||
	    snprintf(pub, sizeof pub, "%s.pub", path) >= (int)sizeof pub) {
		log_error("%s: path too long", path);
		return -1;
	}
	if (ssh_pki_generate(k->type, k->bits, &key) != SSH_OK) {
		log_error("cannot generate a %s host key", ssh_key_type_to_char(k->type));
		return -1;
	}
	old = umask(077);
	unlink(tmp);
	if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp) != SSH_OK ||
	    chmod(tmp, 0600) < 0 || rename(tmp, path) < 0) {
		log_error("cannot write %s", path);
		unlink(tmp);
		goto out;
	}
	/* The public half is for operators (known_hosts); losing it is harmless. */
	if (ssh_pki_export_pubkey_file(key, pub) == SSH_OK)
		chmod(pub, 0644);
	log_info("generated host key %s", path);
	r = 0;
out:
	umask(old);
	ssh_key_free(key);
	return r;
}

/* A private key readable by others is a leaked key: refuse it, as sshd does. */
static int hostkeys_check_file(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
		log_error("%s must be a regular file owned by root with mode 0600; not using it", path);
		return -EPERM;
	}
	return 0;
}

static void hostkeys_load_one(const struct hostkey_kind *k, const char *dir, struct hostkeys *hk)
{
	char path[4096], fp[128] = "?";
	ssh_key key = NULL;
	int r;

	if (snprintf(path, sizeof path, "%s/%s", dir, k->file) >= (int)sizeof path) {
		log_error("%s: path too long", dir);
		return;
	}
	r = hostkeys_check_file(path);
	if (r == -ENOENT && hostkeys_generate(k, path) == 0)
		r = hostkeys_check_file(path);
	if (r < 0)
		return;
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		log_error("cannot load the host key %s", path);
		return;
	}
	hostkeys_fingerprint(key, fp, sizeof fp);
	log_info("host key %s %s", ssh_key_type_to_char(ssh_key_type(key)), fp);
	hk->key[hk->n++] = key;
}

int hostkeys_load(const char *dir, struct hostkeys *hk)
{
	hk->n = 0;
	if (hostkeys_dir(dir) < 0)
		return -1;
	for (size_t i = 0; i < HOSTKEYS_MAX; i++)
		hostkeys_load_one(&hostkey_kinds[i], dir, hk);
	if (hk->n == 0) {
		log_error("no usable host key in %s", dir);
		return -1;
	}
	return 0;
}

void hostkeys_free(struct hostkeys *hk)
{
	for (size_t i = 0; i < hk->n; i++)
		ssh_key_free(hk->key[i]);
	hk->n = 0;
}

int hostkeys_give(struct hostkeys *hk, ssh_bind b)
{
	int r = 0;

	for (size_t i = 0; i < hk->n; i++) {
		if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, hk->key[i]) != SSH_OK) {
			ssh_key_free(hk->key[i]);
			r = -1;
		}
		hk->key[i] = NULL;
	}
	hk->n = 0;
	return r;
}
