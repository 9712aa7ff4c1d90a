package api

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func TestSniffAvatar(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	pngB := enc(func(b *bytes.Buffer) error { return png.Encode(b, img) })
	jpegB := enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) })
	gifB := enc(func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) })
	bmp := make([]byte, 30)
	copy(bmp, "BM")
	binary.LittleEndian.PutUint32(bmp[2:], 30)
	webp := append([]byte("RIFF\x00\x00\x00\x00WEBP"), make([]byte, 8)...)
	binary.LittleEndian.PutUint32(webp[4:], uint32(len(webp)-8))

	for want, b := range map[string][]byte{"image/png": pngB, "image/jpeg": jpegB, "image/gif": gifB, "image/bmp": bmp, "image/webp": webp} {
		if got := sniffAvatar(b); got != want {
			t.Errorf("%s sniffed as %q", want, got)
		}
		if got := sniffAvatar(b[:len(b)-1]); got != "" {
			t.Errorf("%s cut short sniffed as %q", want, got)
		}
	}
	for _, b := range [][]byte{nil, []byte("<svg/>"), []byte("GIF8"), []byte("BM"), []byte("RIFF"), []byte{0xff, 0xd8, 0xff},
		append(bytes.Clone(pngB), '<')} {
		if got := sniffAvatar(b); got != "" {
			t.Errorf("%q sniffed as %q", b, got)
		}
	}
}

func TestAvatarFilename(t *testing.T) {
	for in, want := range map[string]string{
		"me.png":                 "me.png",
		"../../etc/passwd":       "passwd",
		"my photo (1).jpg":       "my-photo--1-.jpg",
		"été.png":                "-t-.png", // é is one character outside [\w.-], as in JavaScript
		"..":                     "avatar.png",
		"":                       "avatar.png",
		"dir/":                   "dir",
		strings.Repeat("a", 300): strings.Repeat("a", 128),
	} {
		if got := avatarFilename(in, "image/png"); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// FuzzAvatarUpload: whatever the multipart body, the avatar route answers a Logto error or a
// stored image, never a 5xx, and only content that really is an avatar image reaches the core.
func FuzzAvatarUpload(f *testing.F) {
	body, ct := avatarBody("file", "a.gif", tinyGIF)
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	f.Add([]byte(body))
	f.Add([]byte("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n<svg/>\r\n--" + boundary + "--\r\n"))
	f.Add([]byte("--" + boundary + "\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := newBench(t)
		grant(b, "profile")
		editable(b, "avatar")
		a := b.do(request{method: "POST", path: "/api/my-account/user-assets/avatar", body: string(raw),
			header: map[string]string{"Content-Type": ct}})
		if a.status >= 500 || (a.status != 200 && a.code == "") {
			t.Fatalf("%d %s", a.status, a.body)
		}
		for _, up := range b.core.uploads {
			if sniffAvatar(up.Content) == "" || up.ContentType != sniffAvatar(up.Content) {
				t.Fatalf("stored %q as %s", up.Content, up.ContentType)
			}
		}
	})
}
